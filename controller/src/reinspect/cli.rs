//! `witness disc …`: record where a copy is kept, re-read it, list the copies due.

use clap::Subcommand;
use reqwest::Method;
use witness_schemas::api::Disc;
use witness_schemas::schedule::{Inspection, InspectionDue, SetShelf};

use crate::cli::{self, Client};

#[derive(Debug, Subcommand)]
pub enum DiscCommand {
    /// Records where a copy is kept (e.g. A柜-3层-12盒).
    Shelf { id: i64, shelf: String },
    /// Re-reads a copy now against the catalog's digests; exit 1 when it fails (a re-burn job
    /// is raised).
    Inspect {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Lists kept copies with their next re-read date.
    Due {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: DiscCommand) -> anyhow::Result<bool> {
    match command {
        DiscCommand::Shelf { id, shelf } => {
            let disc: Disc = client
                .send_json(
                    Method::PUT,
                    &format!("/api/discs/{id}/shelf"),
                    &SetShelf { shelf },
                )
                .await?;
            println!("光盘/副本 {} 存放位置：{}", disc.id, disc.shelf);
            Ok(true)
        }
        DiscCommand::Inspect { id, json } => {
            let done: Inspection = client
                .post_json(&format!("/api/discs/{id}/inspect"))
                .await?;
            if json {
                cli::print_json(&done)?;
            } else if done.result == "passed" {
                println!("光盘/副本 {id} 复检通过");
            } else {
                println!(
                    "光盘/副本 {id} 复检未通过（{} 处问题）：{}{}",
                    done.problems,
                    done.detail,
                    done.reburn_job_id
                        .map(|j| format!("；已建立重刻作业 {j}"))
                        .unwrap_or_default()
                );
            }
            Ok(done.result == "passed")
        }
        DiscCommand::Due { json } => {
            let due: Vec<InspectionDue> = client.get_json("/api/inspections/due").await?;
            if json {
                cli::print_json(&due)?;
                return Ok(true);
            }
            for d in &due {
                println!(
                    "{:>5}  {}  {}  {}  下次复检 {}{}",
                    d.disc_id,
                    d.project_number,
                    d.kind,
                    if d.shelf.is_empty() {
                        "（未登记位置）"
                    } else {
                        &d.shelf
                    },
                    d.due_at,
                    if d.overdue { "  已到期" } else { "" }
                );
            }
            Ok(true)
        }
    }
}
