//! `witness clearing run`: clearing on local files, without the daemon.

use std::path::{Path, PathBuf};

use anyhow::Context;
use witness_schemas::clearing::{Bill, ClearingConfig, ClearingResult, FindingKind};

use crate::error::Result;

/// `NAME=FILE` of `--bid`.
pub fn parse_bid_arg(text: &str) -> anyhow::Result<(String, PathBuf)> {
    let (name, path) = text
        .split_once('=')
        .with_context(|| format!("--bid 应写成 投标人=文件，而不是「{text}」"))?;
    anyhow::ensure!(!name.trim().is_empty(), "--bid「{text}」缺少投标人名称");
    Ok((name.trim().to_string(), PathBuf::from(path)))
}

/// Reads the tender and every bid, several at a time: parsing a large workbook is CPU-bound
/// and the appliance has more than one core.
pub fn read_all(tender: &Path, bids: &[(String, PathBuf)]) -> Result<(Bill, Vec<Bill>)> {
    let jobs: Vec<(&str, &Path)> = std::iter::once(("招标控制价", tender))
        .chain(bids.iter().map(|(n, p)| (n.as_str(), p.as_path())))
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<Bill>>> = (0..jobs.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((name, path)) = jobs.get(i) else {
                    break;
                };
                let bill = super::xlsx::read_bill(path, name);
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = Some(bill);
                }
            });
        }
    });
    let mut bills = Vec::with_capacity(jobs.len());
    for result in results {
        bills.push(result.unwrap_or_else(|| Err(crate::err!(Internal, "读取线程异常退出")))?);
    }
    let tender = bills.remove(0);
    Ok((tender, bills))
}

pub fn read_config(path: Option<&Path>) -> anyhow::Result<ClearingConfig> {
    let Some(path) = path else {
        return Ok(ClearingConfig::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("读取 {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} 不是有效的清标配置 JSON", path.display()))
}

/// The whole `clearing run` command; findings are results, so it succeeds when the run did.
pub fn run(
    tender: &Path,
    bid_args: &[String],
    json: bool,
    report: Option<&Path>,
    config: Option<&Path>,
) -> anyhow::Result<()> {
    anyhow::ensure!(!bid_args.is_empty(), "至少需要一个 --bid 投标人=文件");
    let bids: Vec<(String, PathBuf)> = bid_args
        .iter()
        .map(|a| parse_bid_arg(a))
        .collect::<anyhow::Result<_>>()?;
    let config = read_config(config)?;
    let (tender, bills) = read_all(tender, &bids)?;
    let result = super::run(&tender, &bills, &config)?;
    let bidders: Vec<String> = bills.iter().map(|b| b.bidder.clone()).collect();
    if let Some(path) = report {
        write_report(path, &result, &bidders)?;
    }
    if json {
        crate::cli::print_json(&result)?;
    } else {
        print_text(&result);
        if let Some(path) = report {
            println!("清标报告已写入 {}", path.display());
        }
    }
    Ok(())
}

/// Writes the report as .xlsx, or as printable HTML when the name ends in .html.
pub fn write_report(
    path: &Path,
    result: &ClearingResult,
    bidders: &[String],
) -> anyhow::Result<()> {
    let is_html = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let bytes = if is_html {
        super::report::html(result, "清标报告").into_bytes()
    } else {
        super::report::xlsx(result, bidders)?
    };
    std::fs::write(path, bytes).with_context(|| format!("写入 {}", path.display()))
}

fn print_text(result: &ClearingResult) {
    println!("投标报价对比（{}）", result.analyses.base);
    println!(
        "{:>4}  {:<16} {:>18} {:>18} {:>10}  有效",
        "排名", "投标人", "投标报价", "修正后", "占控制价%"
    );
    let mut prices = result.analyses.price_comparison.clone();
    prices.sort_by_key(|p| p.rank);
    for p in &prices {
        println!(
            "{:>4}  {:<16} {:>18} {:>18} {:>10}  {}",
            p.rank,
            p.bidder,
            p.stated_total,
            p.corrected_total,
            p.percent_of_control,
            if p.valid { "是" } else { "否" }
        );
    }
    println!();
    println!("问题 {} 处", result.findings.len());
    for kind in FindingKind::ALL {
        let of_kind: Vec<_> = result.findings.iter().filter(|f| f.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        println!(
            "\n{}（{}）{} 处 — {}",
            kind.label_zh(),
            kind.as_str(),
            of_kind.len(),
            of_kind[0].rule
        );
        for f in of_kind {
            println!(
                "  {} | {} | {} {} | 应为 {} | 实为 {}{}{}",
                f.bidder,
                f.unit,
                f.item_code,
                f.item_name,
                f.expected,
                f.actual,
                if f.location.is_empty() {
                    String::new()
                } else {
                    format!(" | {}", f.location)
                },
                f.correction.as_ref().map_or_else(String::new, |c| format!(
                    " | 修正 {}：{} → {}，修正后投标总价 {}",
                    c.field, c.from, c.to, c.corrected_bid_total
                ))
            );
        }
    }
}
