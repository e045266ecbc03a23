//! `witness search QUERY [--json] [--year Y] [--category C]` and `witness search reindex`.

use anyhow::bail;
use witness_schemas::search::{ReindexReport, SearchQuery, SearchResults, SnippetPart};

/// Searches projects, documents, videos and discs (中文、项目编号片段、投标人……).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SearchArgs {
    #[command(subcommand)]
    pub command: Option<SearchCommand>,
    /// Words to find; every word must match (e.g. 兰考 道路 2019).
    pub query: Vec<String>,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Only items of projects opened in this year.
    #[arg(long)]
    pub year: Option<i32>,
    /// Only this category (construction, procurement, land, mining, property, or 工程建设 …).
    #[arg(long)]
    pub category: Option<String>,
    /// Only this kind of item (project, document, video, audio, disc, disk_copy).
    #[arg(long)]
    pub kind: Option<String>,
    /// First bid-opening day, YYYY-MM-DD.
    #[arg(long)]
    pub from: Option<String>,
    /// Last bid-opening day, YYYY-MM-DD.
    #[arg(long)]
    pub to: Option<String>,
    /// Number of results.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, clap::Subcommand)]
pub enum SearchCommand {
    /// Rebuilds the search index from the catalog.
    Reindex,
}

/// Runs the subcommand against the daemon at `server`.
pub async fn run(server: &str, token: Option<String>, args: SearchArgs) -> anyhow::Result<()> {
    let client = crate::cli::Client::new(server).with_token(token);
    if let Some(SearchCommand::Reindex) = args.command {
        let report: ReindexReport = client.post_json("/api/search/reindex").await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "已重建搜索索引：{} 个项目，{} 个条目，用时 {:.0} 毫秒",
                report.projects, report.items, report.took_ms
            );
        }
        return Ok(());
    }
    let query = SearchQuery {
        q: args.query.join(" "),
        year: args.year,
        category: args.category,
        kind: args.kind,
        from: args.from,
        to: args.to,
        limit: Some(args.limit),
        ..SearchQuery::default()
    };
    if query.q.trim().is_empty() && query.year.is_none() && query.category.is_none() {
        bail!("请给出要搜索的词（例如 witness search 兰考 道路 2019）");
    }
    let results: SearchResults = client
        .get_json(&format!("/api/search?{}", query_string(&query)))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", render(&results));
    }
    Ok(())
}

/// The query string of a search (reqwest's `query` feature is not built).
fn query_string(query: &SearchQuery) -> String {
    use crate::cli::encode;
    let mut pairs = vec![format!("q={}", encode(&query.q))];
    let optional = [
        ("year", query.year.map(|y| y.to_string())),
        ("category", query.category.clone()),
        ("kind", query.kind.clone()),
        ("from", query.from.clone()),
        ("to", query.to.clone()),
        ("limit", query.limit.map(|l| l.to_string())),
        ("facets", query.facets.map(|f| f.to_string())),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            pairs.push(format!("{name}={}", encode(&value)));
        }
    }
    pairs.join("&")
}

/// Matches in 【】, the way they are shown in a terminal.
fn plain(parts: &[SnippetPart]) -> String {
    parts
        .iter()
        .map(|p| {
            if p.hit {
                format!("【{}】", p.text)
            } else {
                p.text.clone()
            }
        })
        .collect()
}

/// The text output: one block per hit, then the facets.
pub fn render(results: &SearchResults) -> String {
    let mut out = format!(
        "共 {} 条结果（{:.1} 毫秒）\n",
        results.total, results.took_ms
    );
    for hit in &results.hits {
        out.push_str(&format!(
            "\n[{}] {}\n",
            hit.kind.label_zh(),
            plain(&hit.title)
        ));
        out.push_str(&format!(
            "    {} {} · {}",
            hit.project_number, hit.project_name, hit.date
        ));
        if let Some(location) = &hit.location {
            out.push_str(&format!(" · 位置：{location}"));
        }
        out.push('\n');
        let snippet = plain(&hit.snippet);
        if !snippet.trim().is_empty() {
            out.push_str(&format!("    {}\n", snippet.trim()));
        }
    }
    let facet = |name: &str, counts: &[witness_schemas::search::FacetCount]| {
        if counts.is_empty() {
            return String::new();
        }
        let list: Vec<String> = counts
            .iter()
            .map(|c| format!("{} {}", c.value, c.count))
            .collect();
        format!("{name}：{}\n", list.join("，"))
    };
    out.push('\n');
    out.push_str(&facet("年份", &results.facets.year));
    out.push_str(&facet("类别", &results.facets.category));
    out.push_str(&facet("类型", &results.facets.kind));
    out.push_str(&facet("存放位置", &results.facets.location));
    out
}
