//! Benchmark (not a test) of the clearing engine: N bids × M items generated as GB 50500-2013
//! workbooks, then import + every check + every analysis, timed and with peak memory, next to
//! calamine alone reading the same files (the floor any .xlsx-based import has to pay).
//!
//! ```text
//! cargo run --release -p witness-controller --bin bench_clearing -- [--bids 10] [--items 20000] [--dir PATH]
//! ```
//!
//! Each phase runs in its own child process, so the peak resident memory (VmHWM from
//! /proc/self/status) of one phase is not hidden by the other's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use calamine::Reader;
use witness_controller::clearing::{self, fixtures};
use witness_schemas::clearing::ClearingConfig;

const USAGE: &str = "\
usage: bench_clearing [--bids N] [--items N] [--dir PATH]
  --bids N    number of bids (default 10)
  --items N   items per bill (default 20000)
  --dir PATH  where the workbooks are generated (default target/bench-clearing); kept for reuse";

struct Options {
    bids: usize,
    items: usize,
    dir: PathBuf,
    phase: Option<String>,
}

fn parse() -> anyhow::Result<Options> {
    let mut options = Options {
        bids: 10,
        items: 20_000,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-clearing"),
        phase: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--bids" => options.bids = value()?.parse()?,
            "--items" => options.items = value()?.parse()?,
            "--dir" => options.dir = PathBuf::from(value()?),
            "--phase" => options.phase = Some(value()?),
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// Peak resident set size of this process in KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn files(options: &Options) -> (PathBuf, Vec<(String, PathBuf)>) {
    let tender = options.dir.join(format!("tender-{}.xlsx", options.items));
    let bids = (0..options.bids)
        .map(|i| {
            (
                format!("投标人{:02}", i + 1),
                options
                    .dir
                    .join(format!("bid-{}-{:02}.xlsx", options.items, i + 1)),
            )
        })
        .collect();
    (tender, bids)
}

fn generate(options: &Options) -> anyhow::Result<()> {
    let (tender_path, bids) = files(options);
    if tender_path.exists() && bids.iter().all(|(_, p)| p.exists()) {
        return Ok(());
    }
    std::fs::create_dir_all(&options.dir)?;
    let started = Instant::now();
    let tender = fixtures::tender(1, options.items);
    std::fs::write(&tender_path, fixtures::write_xlsx(&tender, true)?)?;
    for (i, (name, path)) in bids.iter().enumerate() {
        let mut bid = fixtures::priced_bid(&tender, name, i + 1);
        // A few planted errors so the checks have findings to report, as in real tenders.
        if let Some(item) = bid.units[0].items.items.get_mut(i * 97 + 5) {
            item.total = Some(witness_schemas::clearing::Num::parse("1.00").context("num")?);
        }
        fixtures::recompute_sums(&mut bid);
        std::fs::write(path, fixtures::write_xlsx(&bid, false)?)?;
    }
    let bytes: u64 = std::iter::once(&tender_path)
        .chain(bids.iter().map(|(_, p)| p))
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    eprintln!(
        "generated {} workbooks ({:.1} MB) in {:.1} s",
        bids.len() + 1,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// calamine alone: open every workbook and read every sheet into memory, with the same
/// parallelism as the clearing import.
fn baseline(options: &Options) -> anyhow::Result<String> {
    let (tender, bids) = files(options);
    let paths: Vec<PathBuf> = std::iter::once(tender)
        .chain(bids.into_iter().map(|(_, p)| p))
        .collect();
    let started = Instant::now();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cells = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(path) =
                    paths.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    let bytes = std::fs::read(path).expect("read");
                    let mut workbook =
                        calamine::Xlsx::new(std::io::Cursor::new(bytes)).expect("xlsx");
                    for name in workbook.sheet_names().to_vec() {
                        let range = workbook.worksheet_range(&name).expect("sheet");
                        cells.fetch_add(
                            range.get_size().0 * range.get_size().1,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                }
            });
        }
    });
    Ok(format!(
        "{} {} {}",
        started.elapsed().as_secs_f64(),
        vm_hwm_kib(),
        cells.into_inner()
    ))
}

fn full(options: &Options) -> anyhow::Result<String> {
    let (tender, bids) = files(options);
    let started = Instant::now();
    let (tender, bills) = clearing::cli::read_all(&tender, &bids)?;
    let imported = started.elapsed().as_secs_f64();
    let import_hwm = vm_hwm_kib();
    let result = clearing::run(&tender, &bills, &ClearingConfig::default())?;
    let total = started.elapsed().as_secs_f64();
    let bidders: Vec<String> = bills.iter().map(|b| b.bidder.clone()).collect();
    let report_started = Instant::now();
    let report = clearing::report::xlsx(&result, &bidders)?;
    let report_s = report_started.elapsed().as_secs_f64();
    Ok(format!(
        "{total} {} {imported} {} {report_s} {} {import_hwm}",
        vm_hwm_kib(),
        result.findings.len(),
        report.len()
    ))
}

fn child(phase: &str, options: &Options) -> anyhow::Result<Vec<f64>> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--phase", phase, "--bids", &options.bids.to_string()])
        .args(["--items", &options.items.to_string(), "--dir"])
        .arg(&options.dir)
        .output()?;
    if !out.status.success() {
        bail!("{phase} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8(out.stdout)?
        .split_whitespace()
        .map(|v| v.parse::<f64>().context("child output"))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let options = parse()?;
    match options.phase.as_deref() {
        Some("baseline") => {
            println!("{}", baseline(&options)?);
            return Ok(());
        }
        Some("full") => {
            println!("{}", full(&options)?);
            return Ok(());
        }
        Some(other) => bail!("unknown phase {other}"),
        None => {}
    }
    generate(&options)?;
    let base = child("baseline", &options)?;
    let run = child("full", &options)?;
    let mib = |kib: f64| kib / 1024.0;
    println!(
        "clearing benchmark: {} bids × {} items (+ tender), {} cores, workbooks in {}",
        options.bids,
        options.items,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        Path::new(&options.dir).display()
    );
    println!("{:<44} {:>10} {:>14}", "phase", "wall s", "peak RSS MiB");
    println!(
        "{:<44} {:>10.2} {:>14.1}",
        format!("calamine reads every sheet ({} cells)", base[2] as u64),
        base[0],
        mib(base[1])
    );
    println!(
        "{:<44} {:>10.2} {:>14.1}",
        "clearing: import + all checks + analyses",
        run[0],
        mib(run[1])
    );
    println!(
        "{:<44} {:>10.2} {:>14.1}",
        "  of which import (peak when imported)",
        run[2],
        mib(run[6])
    );
    println!(
        "{:<44} {:>10.2}",
        "  of which checks + analyses",
        run[0] - run[2]
    );
    println!(
        "{:<44} {:>10.2}   ({:.1} MB, not in the figures above)",
        "report .xlsx",
        run[4],
        run[5] / 1e6
    );
    println!(
        "ratio clearing / calamine: wall {:.2}×, peak memory {:.2}×; {} findings",
        run[0] / base[0],
        run[1] / base[1],
        run[3] as u64
    );
    Ok(())
}
