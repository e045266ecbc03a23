//! `witness search QUERY [--json] [--year Y] [--category C]` and `witness search reindex`.

use anyhow::{anyhow, bail, Context};
use witness_schemas::api::ApiError;
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

async fn send<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    token: Option<&str>,
    server: &str,
) -> anyhow::Result<T> {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.map_err(|e| {
        anyhow!("无法连接到 Witness 服务 {server}（服务未启动？用 --server 或 WITNESS_SERVER 指定）：{e}")
    })?;
    let status = response.status();
    let bytes = response.bytes().await.context("读取服务应答")?;
    if !status.is_success() {
        if let Ok(error) = serde_json::from_slice::<ApiError>(&bytes) {
            bail!(
                "{}（{}，HTTP {}）",
                error.message,
                error.kind,
                status.as_u16()
            );
        }
        bail!(
            "服务返回 HTTP {}：{}",
            status.as_u16(),
            String::from_utf8_lossy(&bytes)
        );
    }
    serde_json::from_slice(&bytes).context("服务应答不是预期的 JSON")
}

/// Runs the subcommand against the daemon at `server`.
pub async fn run(server: &str, token: Option<String>, args: SearchArgs) -> anyhow::Result<()> {
    let base = server.trim_end_matches('/');
    let http = reqwest::Client::new();
    if let Some(SearchCommand::Reindex) = args.command {
        let report: ReindexReport = send(
            http.post(format!("{base}/api/search/reindex")),
            token.as_deref(),
            base,
        )
        .await?;
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
    let results: SearchResults = send(
        http.get(format!("{base}/api/search?{}", query_string(&query))),
        token.as_deref(),
        base,
    )
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
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
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
