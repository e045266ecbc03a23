//! `witness batch …`: download the template, import a filled-in sheet (or only check it).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use witness_schemas::schedule::BatchReport;

use crate::cli::{self, Client};

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Writes the .xlsx template.
    Template {
        #[arg(long, default_value = "批量刻录模板.xlsx")]
        out: PathBuf,
    },
    /// Imports a filled-in template: valid rows become projects, sources and backup jobs.
    /// Exit 1 when any row has an error.
    Import {
        file: PathBuf,
        /// Only check the rows; store nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: BatchCommand) -> anyhow::Result<bool> {
    match command {
        BatchCommand::Template { out } => {
            let bytes = client.get_bytes("/api/batch/template.xlsx").await?;
            std::fs::write(&out, bytes).with_context(|| format!("写入 {}", out.display()))?;
            println!("模板已保存到 {}", out.display());
            Ok(true)
        }
        BatchCommand::Import {
            file,
            dry_run,
            json,
        } => {
            let bytes = std::fs::read(&file).with_context(|| format!("读取 {}", file.display()))?;
            let report: BatchReport = client
                .post_bytes(
                    &format!("/api/batch/import?dry_run={dry_run}"),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    bytes,
                )
                .await?;
            if json {
                cli::print_json(&report)?;
            } else {
                println!(
                    "{}：共 {} 行，{} 行无误{}",
                    if report.dry_run {
                        "仅校验"
                    } else {
                        "导入"
                    },
                    report.rows,
                    report.valid_rows,
                    if report.dry_run {
                        "（未保存）"
                    } else {
                        ""
                    }
                );
                for e in &report.errors {
                    println!("  第 {} 行 {}：{}", e.row, e.column, e.message);
                }
                for r in &report.results {
                    match (&r.job, &r.error) {
                        (Some(job), _) => println!("  {}  作业 {}", r.project, job.id),
                        (None, Some(e)) => println!("  {}  未建作业：{e}", r.project),
                        _ => {}
                    }
                }
            }
            Ok(report.errors.is_empty())
        }
    }
}
