//! Benchmark (not a test): a generated archive of N search items (default 1,000,000: 15 years of
//! a busy county center) indexed by Witness's tantivy index and by SQLite FTS5 with the trigram
//! tokenizer, side by side: build rate, p50/p99 latency over a fixed query set, and the recall
//! of both on two-character words.
//!
//! ```text
//! cargo run --release -p witness-tests --bin bench_search -- [--docs 1000000] [--dir PATH] [--rounds 10]
//! ```
//!
//! See tests/BENCHMARKS.md ("Search") for the figures and what they mean.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use witness_controller::search::baseline::Fts5Index;
use witness_controller::search::index::{SearchIndex, WriterConfig};
use witness_controller::search::query;
use witness_controller::search::ItemDoc;
use witness_schemas::search::{ItemKind, SearchQuery};

const USAGE: &str = "\
usage: bench_search [--docs N] [--dir PATH] [--rounds N] [--per-query] [--reuse]
  --docs N     items in the generated archive (default 1000000)
  --dir PATH   work folder for both indexes (default: target/bench-search)
  --rounds N   times each query runs on each engine (default 10)
  --per-query  also print each query's median latency and number of hits on both engines
  --reuse      keep both indexes of an earlier run with the same --docs (query changes only)
  --query Q    time only this query (repeatable), e.g. to study a slow one with --reuse";

/// xorshift64*: deterministic, so every run indexes the same archive.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[(self.next() % list.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const COUNTIES: &[(&str, &str)] = &[
    ("兰考县", "LK"),
    ("杞县", "QX"),
    ("通许县", "TX"),
    ("尉氏县", "WS"),
    ("祥符区", "XF"),
    ("鼓楼区", "GL"),
    ("龙亭区", "LT"),
    ("顺河回族区", "SH"),
    ("禹王台区", "YW"),
    ("开封市", "KF"),
];
const SUBJECTS: &[&str] = &[
    "农村道路",
    "城区道路",
    "排水管网",
    "供水管网",
    "中心学校",
    "人民医院",
    "污水处理厂",
    "小型农田水利",
    "高标准农田",
    "路灯亮化",
    "园林绿化",
    "公租房",
    "老旧小区",
    "河道治理",
    "乡镇卫生院",
    "文化广场",
    "垃圾中转站",
    "桥梁加固",
    "办公楼维修",
    "教学楼",
];
const WORKS: &[(&str, &str)] = &[
    ("提质改造工程", "construction"),
    ("新建工程", "construction"),
    ("施工", "construction"),
    ("工程监理", "construction"),
    ("勘察设计", "construction"),
    ("设备采购项目", "procurement"),
    ("物业服务采购", "procurement"),
    ("信息化建设采购", "procurement"),
];
const LAND: &[(&str, &str)] = &[
    ("国有建设用地使用权挂牌出让", "land"),
    ("采矿权挂牌出让", "mining"),
    ("国有资产转让", "property"),
];
const FIRM_PLACES: &[&str] = &[
    "河南", "开封", "郑州", "洛阳", "商丘", "新乡", "周口", "许昌",
];
const FIRM_WORDS: &[&str] = &[
    "宏达", "中诚", "恒信", "华建", "建业", "天成", "正阳", "鑫源", "广厦", "远大", "永安", "瑞丰",
    "中原", "东方", "金盾", "昌盛", "鼎盛", "润泽", "嘉禾", "兴业",
];
const FIRM_KINDS: &[&str] = &[
    "建设工程有限公司",
    "市政工程有限公司",
    "路桥工程有限公司",
    "医疗器械有限公司",
    "科技有限公司",
    "建筑安装有限公司",
    "园林绿化有限公司",
    "水利工程有限公司",
];
const MATERIALS: &[&str] = &[
    "沥青混凝土",
    "水泥稳定碎石",
    "球墨铸铁管",
    "钢筋混凝土",
    "透水砖",
    "LED路灯",
    "彩色多普勒超声诊断仪",
    "防水卷材",
    "镀锌钢管",
    "花岗岩路缘石",
];

/// Two-character words whose recall is measured (most Chinese words are two characters, and
/// FTS5 trigrams cannot match fewer than three).
const TWO_CHAR_QUERIES: &[&str] = &[
    "道路", "医院", "监理", "沥青", "绿化", "路灯", "学校", "水利", "桥梁", "宏达",
];

/// The rest of the fixed query set.
const OTHER_QUERIES: &[&str] = &[
    "兰考 道路 2019",
    "尉氏县2020",
    "杞县 医院 采购",
    "排水管网 改造",
    "LKGC-2019",
    "0421",
    "河南宏达建设工程有限公司",
    "开封华建市政工程有限公司",
    "提质改造 2015",
    "彩色多普勒超声诊断仪",
    "评标室2 通道03",
    "挂牌出让 2022",
    "高标准农田 祥符区",
    "开标记录表 鼎盛",
    "招标文件 桥梁加固",
];

/// Generates the archive: projects with their files and discs, about 15 items per project.
fn generate(n_docs: usize) -> Vec<ItemDoc> {
    let mut rng = Rng(0x5EED_2026_0318);
    let mut docs = Vec::with_capacity(n_docs + 32);
    let mut serial = 0u64;
    while docs.len() < n_docs {
        serial += 1;
        let year = 2011 + (serial * 15 / (n_docs as u64 / 15 + 1)).min(14);
        let (county, code) = COUNTIES[rng.below(COUNTIES.len() as u64) as usize];
        let (name, category) = if rng.below(10) == 0 {
            let (what, category) = LAND[rng.below(LAND.len() as u64) as usize];
            (format!("{county}{year}年{what}"), category)
        } else {
            let (work, category) = WORKS[rng.below(WORKS.len() as u64) as usize];
            (
                format!("{county}{year}年{}{work}", rng.pick(SUBJECTS)),
                category,
            )
        };
        let kind_code = match category {
            "construction" => "GC",
            "procurement" => "CG",
            "land" => "TD",
            "mining" => "KQ",
            _ => "CQ",
        };
        let number = format!("{code}{kind_code}-{year}-{:04}", serial % 10_000);
        let month = 1 + rng.below(12);
        let day = 1 + rng.below(28);
        let date = format!("{year}-{month:02}-{day:02}");
        let project_id = serial as i64;
        let base = ItemDoc {
            project_id,
            project_number: number.clone(),
            project_name: name.clone(),
            category: category.to_string(),
            date: date.clone(),
            context: format!("{number} {name} {date} {year}年"),
            item_link: format!("/#/projects/{number}"),
            ..ItemDoc::default()
        };
        let n_bidders = 3 + rng.below(6) as usize;
        let bidders: Vec<String> = (0..n_bidders)
            .map(|_| {
                format!(
                    "{}{}{}",
                    rng.pick(FIRM_PLACES),
                    rng.pick(FIRM_WORDS),
                    rng.pick(FIRM_KINDS)
                )
            })
            .collect();
        let tenderer = format!(
            "{county}{}",
            rng.pick(&[
                "交通运输局",
                "住房和城乡建设局",
                "教育局",
                "卫生健康委员会",
                "水利局",
                "自然资源局"
            ])
        );
        let material = rng.pick(MATERIALS);
        docs.push(ItemDoc {
            id: format!("project:{number}"),
            kind: Some(ItemKind::Project),
            title: name.clone(),
            body: format!(
                "招标人：{tenderer}\n投标人：{}\n中标人：{}",
                bidders.join("、"),
                bidders[0]
            ),
            context: format!("{number} {date}"),
            codes: number.clone(),
            ..base.clone()
        });
        docs.push(ItemDoc {
            id: format!("file:{serial}-tender"),
            kind: Some(ItemKind::Document),
            title: format!("招标文件/{number}-招标文件.docx"),
            body: format!(
                "{name}\n招标文件\n项目编号：{number}\n招标人：{tenderer}\n第一章 招标公告\n本项目主要材料为{material}，计划工期{}日历天，质量要求合格。投标人须具备相应资质。",
                90 + rng.below(300)
            ),
            codes: format!("{number}-招标文件.docx {number}"),
            ..base.clone()
        });
        for (i, bidder) in bidders.iter().enumerate() {
            docs.push(ItemDoc {
                id: format!("file:{serial}-bid{i}"),
                kind: Some(ItemKind::Document),
                title: format!("投标文件/{:02}-{bidder}/商务标.pdf", i + 1),
                body: format!("投标人：{bidder}"),
                codes: number.clone(),
                ..base.clone()
            });
        }
        docs.push(ItemDoc {
            id: format!("file:{serial}-record"),
            kind: Some(ItemKind::Document),
            title: "开标记录表.xlsx".into(),
            body: bidders
                .iter()
                .enumerate()
                .map(|(i, b)| format!("{}\t{b}\t{}\n", i + 1, 1_000_000 + rng.below(90_000_000)))
                .collect(),
            codes: number.clone(),
            ..base.clone()
        });
        docs.push(ItemDoc {
            id: format!("file:{serial}-report"),
            kind: Some(ItemKind::Document),
            title: "评标报告.pdf".into(),
            codes: number.clone(),
            ..base.clone()
        });
        for room in ["开标室", "评标室1", "评标室2"] {
            let channel = format!("通道{:02}", 1 + rng.below(4));
            docs.push(ItemDoc {
                id: format!("file:{serial}-{room}"),
                kind: Some(ItemKind::Video),
                title: format!("评标录像/{room}-{channel}.mp4"),
                body: format!("房间：{room} 通道：{channel}"),
                codes: number.clone(),
                ..base.clone()
            });
        }
        for copy in 0..2 {
            let shelf = format!(
                "档案室A-{:02}架-{:02}层",
                1 + rng.below(40),
                1 + rng.below(6)
            );
            docs.push(ItemDoc {
                id: format!("disc:{serial}-{copy}"),
                kind: Some(if copy == 0 {
                    ItemKind::Disc
                } else {
                    ItemKind::DiskCopy
                }),
                title: format!("光盘 WIT{serial:08}-1 第 1/1 张"),
                body: format!("介质：bd-r 位置：{shelf} 状态：已校验"),
                codes: format!("WIT{serial:08}-1 bd-r {number}"),
                location: Some(shelf),
                item_link: "/#/discs".into(),
                ..base.clone()
            });
        }
    }
    docs.truncate(n_docs);
    docs
}

fn contains_word(doc: &ItemDoc, word: &str) -> bool {
    doc.title.contains(word) || doc.body.contains(word) || doc.context.contains(word)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Args {
    docs: usize,
    dir: PathBuf,
    rounds: usize,
    per_query: bool,
    reuse: bool,
    only: Vec<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        docs: 1_000_000,
        dir: PathBuf::from("target/bench-search"),
        rounds: 10,
        per_query: false,
        reuse: false,
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--docs" => args.docs = value()?.parse()?,
            "--dir" => args.dir = PathBuf::from(value()?),
            "--rounds" => args.rounds = value()?.parse()?,
            "--per-query" => args.per_query = true,
            "--reuse" => args.reuse = true,
            "--query" => args.only.push(value()?),
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    Ok(args)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "search benchmark: {} items, {} rounds per query, {cores} cores",
        args.docs, args.rounds
    );
    let started = Instant::now();
    let docs = generate(args.docs);
    println!("generated in {:.1} s", started.elapsed().as_secs_f64());
    let truth: Vec<u64> = TWO_CHAR_QUERIES
        .iter()
        .map(|w| docs.iter().filter(|d| contains_word(d, w)).count() as u64)
        .collect();

    // --- tantivy
    let tantivy_dir = args.dir.join("tantivy");
    let fts_path = args.dir.join("fts5.db");
    let marker = args.dir.join("docs");
    let reuse = args.reuse
        && std::fs::read_to_string(&marker).ok() == Some(args.docs.to_string())
        && fts_path.exists();
    let (tantivy_build, fts_build, index, fts) = if reuse {
        println!(
            "reusing the indexes in {} (build not measured)",
            args.dir.display()
        );
        let index = SearchIndex::open_or_create(&tantivy_dir, WriterConfig::default())?;
        let fts = Fts5Index::open(&fts_path).await?;
        (None, None, index, fts)
    } else {
        let _ = std::fs::remove_file(&marker);
        let _ = std::fs::remove_dir_all(&tantivy_dir);
        let config = WriterConfig {
            threads: cores.clamp(1, 8),
            heap_bytes: 512 << 20,
        };
        let started = Instant::now();
        let index = SearchIndex::open_or_create(&tantivy_dir, config)?;
        for chunk in docs.chunks(10_000) {
            index.add(chunk)?;
        }
        index.commit("bench")?;
        index.wait_merging()?;
        let tantivy_build = started.elapsed();
        let index = SearchIndex::open_or_create(&tantivy_dir, WriterConfig::default())?;
        println!(
            "tantivy: indexed {} items in {:.1} s = {:.0} items/s ({} in the index)",
            docs.len(),
            tantivy_build.as_secs_f64(),
            docs.len() as f64 / tantivy_build.as_secs_f64(),
            index.num_docs()
        );

        // --- FTS5
        std::fs::create_dir_all(&args.dir)?;
        let started = Instant::now();
        let fts = Fts5Index::create(&fts_path).await?;
        for chunk in docs.chunks(10_000) {
            fts.add(chunk).await?;
        }
        fts.optimize().await?;
        let fts_build = started.elapsed();
        println!(
            "FTS5 trigram (SQLite {}): indexed {} items in {:.1} s = {:.0} items/s",
            fts.sqlite_version().await?,
            docs.len(),
            fts_build.as_secs_f64(),
            docs.len() as f64 / fts_build.as_secs_f64()
        );
        std::fs::write(&marker, args.docs.to_string())?;
        (Some(tantivy_build), Some(fts_build), index, fts)
    };
    drop(docs);

    // --- latency: every query, `rounds` times, round-robin; first one round to warm caches.
    // Three tantivy requests per query: the search page's first request (top 20, total,
    // marked snippets; `facets=false`), its second one (total and the four facets, no hits;
    // `limit=0`), and both in one (`GET /api/search` with no options).
    let queries: Vec<&str> = if args.only.is_empty() {
        TWO_CHAR_QUERIES
            .iter()
            .chain(OTHER_QUERIES)
            .copied()
            .collect()
    } else {
        args.only.iter().map(String::as_str).collect()
    };
    let variants: [(&str, Option<usize>, Option<bool>); 3] = [
        (
            "tantivy, page (top 20 + total + snippets, facets=false)",
            None,
            Some(false),
        ),
        ("tantivy, facets (total + 4 facets, limit=0)", Some(0), None),
        (
            "tantivy, all in one (top 20 + total + 4 facets + snippets)",
            None,
            None,
        ),
    ];
    // Per engine/variant, every run in query order; the FTS5 runs last.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len() + 1];
    for round in 0..=args.rounds {
        for q in &queries {
            for (v, (_, limit, facets)) in variants.iter().enumerate() {
                let request = SearchQuery {
                    q: q.to_string(),
                    limit: *limit,
                    facets: *facets,
                    ..SearchQuery::default()
                };
                let t = Instant::now();
                let results = query::search(&index, &request)?;
                let elapsed = t.elapsed();
                std::hint::black_box(results);
                if round > 0 {
                    times[v].push(elapsed);
                }
            }
            let f = Instant::now();
            let ids = fts.search(q, 20).await?;
            let fts_elapsed = f.elapsed();
            std::hint::black_box(ids);
            if round > 0 {
                times[variants.len()].push(fts_elapsed);
            }
        }
    }
    let of_query = |runs: &[Duration], i: usize| -> Vec<Duration> {
        let mut out: Vec<Duration> = runs
            .iter()
            .skip(i)
            .step_by(queries.len())
            .copied()
            .collect();
        out.sort();
        out
    };
    if args.per_query {
        println!(
            "\nper query (median of {} rounds, ms): tantivy page / facets / all in one / hits, FTS5 ms / hits",
            args.rounds
        );
        for (i, q) in queries.iter().enumerate() {
            let median = |v: usize| ms(percentile(&of_query(&times[v], i), 0.5));
            let request = SearchQuery {
                q: q.to_string(),
                limit: Some(0),
                facets: Some(false),
                ..SearchQuery::default()
            };
            let hits = query::search(&index, &request)?.total;
            println!(
                "  {q:<28} {:>7.2} {:>7.2} {:>7.2} {hits:>8}   {:>7.2} {:>8}",
                median(0),
                median(1),
                median(2),
                median(3),
                fts.count(q).await?
            );
        }
    }
    println!(
        "\nlatency over {} queries × {} rounds (p50 / p99 / max, ms; 'answerable': the {} queries \
         without a lone two-character word, where FTS5 finds something):",
        queries.len(),
        args.rounds,
        OTHER_QUERIES.len()
    );
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v.0)
        .chain(["FTS5 trigram (top 20 ids by bm25)"])
        .collect();
    for (v, name) in names.iter().enumerate() {
        let mut all = times[v].clone();
        all.sort();
        // With --query the fixed set's split does not apply: "answerable" is then empty (0).
        let first_other = if args.only.is_empty() {
            TWO_CHAR_QUERIES.len()
        } else {
            queries.len()
        };
        let mut other: Vec<Duration> = (first_other..queries.len())
            .flat_map(|i| of_query(&times[v], i))
            .collect();
        other.sort();
        println!(
            "  {name:<60} all {:>6.2} / {:>6.2} / {:>6.2}   answerable {:>6.2} / {:>6.2}",
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            ms(*all.last().unwrap_or(&Duration::ZERO)),
            ms(percentile(&other, 0.5)),
            ms(percentile(&other, 0.99)),
        );
    }
    if let (Some(t), Some(f)) = (tantivy_build, fts_build) {
        println!(
            "  build rate ratio tantivy/FTS5: {:.2}×",
            f.as_secs_f64() / t.as_secs_f64()
        );
    }

    println!("\nrecall on two-character words (items containing the word / items found):");
    let (mut t_sum, mut f_sum) = (0.0, 0.0);
    for (word, expected) in TWO_CHAR_QUERIES.iter().zip(&truth) {
        let request = SearchQuery {
            q: word.to_string(),
            limit: Some(1),
            ..SearchQuery::default()
        };
        let found = query::search(&index, &request)?.total;
        let fts_found = fts.count(word).await?;
        let recall = |n: u64| {
            if *expected == 0 {
                1.0
            } else {
                n.min(*expected) as f64 / *expected as f64
            }
        };
        t_sum += recall(found);
        f_sum += recall(fts_found);
        println!(
            "  {word}: {expected} items; tantivy {found} (recall {:.3}{}), FTS5 {fts_found} (recall {:.3})",
            recall(found),
            if found == *expected { ", exact" } else { "" },
            recall(fts_found)
        );
    }
    let n = TWO_CHAR_QUERIES.len() as f64;
    println!(
        "  mean recall: tantivy {:.3}, FTS5 trigram {:.3}",
        t_sum / n,
        f_sum / n
    );
    let size = |p: &std::path::Path| -> u64 {
        if p.is_file() {
            return p.metadata().map(|m| m.len()).unwrap_or(0);
        }
        std::fs::read_dir(p)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    println!(
        "\nindex size: tantivy {:.0} MB, FTS5 {:.0} MB",
        size(&tantivy_dir) as f64 / 1e6,
        size(&fts_path) as f64 / 1e6
    );
    Ok(())
}
