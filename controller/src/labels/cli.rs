//! `witness label …`: the disc-face preview as a file, reprinting a disc's face, the printers.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use witness_schemas::api::{LabelPrintResult, PrinterInfo};

use crate::cli::{self, encode, Client};

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Writes the face a project's disc will get (PNG at 300 dpi, or PDF with `--pdf`).
    Preview {
        #[arg(long)]
        project: String,
        /// Disc n of the set; default 1.
        #[arg(long)]
        disc: Option<i64>,
        #[arg(long)]
        pdf: bool,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Prints a disc's face again (REJECT for a rejected disc).
    Print {
        /// The disc's id (`witness discs`).
        #[arg(long)]
        disc: i64,
    },
    /// Lists the disc printers and their states.
    Printers {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: LabelCommand) -> anyhow::Result<()> {
    match command {
        LabelCommand::Preview {
            project,
            disc,
            pdf,
            output,
        } => {
            let mut path = format!(
                "/api/projects/{}/label-preview?format={}",
                encode(&project),
                if pdf { "pdf" } else { "png" }
            );
            if let Some(disc) = disc {
                path.push_str(&format!("&disc={disc}"));
            }
            let bytes = client.get_bytes(&path).await?;
            std::fs::write(&output, &bytes)
                .with_context(|| format!("写入 {}", output.display()))?;
            println!(
                "盘面预览已写入 {}（{} 字节）",
                output.display(),
                bytes.len()
            );
        }
        LabelCommand::Print { disc } => {
            let done: LabelPrintResult = client
                .post_json(&format!("/api/discs/{disc}/print"))
                .await?;
            println!(
                "光盘 {} 的{}盘面已发送到打印机 {}：{}",
                done.disc_id,
                if done.rejected {
                    "废盘 (REJECT) "
                } else {
                    ""
                },
                done.printer,
                done.reference
            );
        }
        LabelCommand::Printers { json } => {
            let printers: Vec<PrinterInfo> = client.get_json("/api/printers").await?;
            if json {
                return cli::print_json(&printers);
            }
            for (i, p) in printers.iter().enumerate() {
                println!(
                    "{}  {:<6}  {:<11}  {}{}",
                    p.name,
                    p.kind,
                    p.state,
                    p.reasons.join("; "),
                    if i == 0 { "  (使用中)" } else { "" }
                );
            }
        }
    }
    Ok(())
}
