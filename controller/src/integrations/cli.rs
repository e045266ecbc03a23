//! `witness integrations …`: target status, dead letters, manual retry, reconciliation reports,
//! data sets and re-extraction (在线监管平台, 财政局), and a project's trade codes, through the API.

use clap::Subcommand;
use reqwest::Method;
use witness_schemas::integration::{
    DataSet, Enqueued, ExtractionOrder, OutboxMessage, ReconciliationReport, TargetStatus,
    TradeCodes, EXPERT_LIBRARY,
};

use crate::cli::{self, Client};

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// Queue depth, dead letters and last success per target.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Messages of a target, newest first.
    Messages {
        /// pending, sent, acked or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value = EXPERT_LIBRARY)]
        target: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Sends a dead or waiting message again now (same idempotency key).
    Retry { id: i64 },
    /// Makes (or remakes) and archives the reconciliation report of a day (YYYY-MM-DD).
    Report {
        day: String,
        #[arg(long, default_value = EXPERT_LIBRARY)]
        target: String,
    },
    /// The data sets (supervision_platform) or stages (finance_bureau) of a target and their
    /// sources; those without one are not supported yet.
    DataSets {
        #[arg(long)]
        target: String,
    },
    /// Extracts one data set of a project again now (重新推送), as new messages.
    Extract {
        #[arg(long)]
        target: String,
        #[arg(long)]
        data_set: String,
        #[arg(long)]
        project: String,
    },
    /// Records 统一交易标识码 and 标段编号 of a project.
    TradeCodes {
        #[arg(long)]
        project: String,
        #[arg(long)]
        unified_deal_code: String,
        #[arg(long)]
        bid_section_code: String,
    },
}

fn print_messages(messages: &[OutboxMessage]) {
    for m in messages {
        println!(
            "{:>6}  {:<20} {:<8} {:>3} 次  {}  {}",
            m.id,
            m.exchange,
            m.state.as_str(),
            m.attempts,
            m.project_number.as_deref().unwrap_or("-"),
            m.last_error.as_deref().unwrap_or("")
        );
    }
}

pub async fn run(client: &Client, command: IntegrationsCommand) -> anyhow::Result<()> {
    match command {
        IntegrationsCommand::Status { json } => {
            let targets: Vec<TargetStatus> = client.get_json("/api/integrations").await?;
            if json {
                return cli::print_json(&targets);
            }
            for t in &targets {
                println!(
                    "{}（{}）{}：队列 {}，已确认 {}，死信 {}，最近成功 {}",
                    t.label,
                    t.target,
                    if t.configured { "" } else { " 未配置" },
                    t.queue_depth,
                    t.acked,
                    t.dead,
                    t.last_success_at.as_deref().unwrap_or("—")
                );
                print_messages(&t.failures);
            }
        }
        IntegrationsCommand::Messages {
            state,
            target,
            limit,
        } => {
            let mut path = format!(
                "/api/integrations/{}/messages?limit={limit}",
                cli::encode(&target)
            );
            if let Some(state) = state {
                path.push_str(&format!("&state={}", cli::encode(&state)));
            }
            let messages: Vec<OutboxMessage> = client.get_json(&path).await?;
            print_messages(&messages);
        }
        IntegrationsCommand::Retry { id } => {
            let message: OutboxMessage = client
                .post_json(&format!("/api/integrations/messages/{id}/retry"))
                .await?;
            print_messages(&[message]);
        }
        IntegrationsCommand::Report { day, target } => {
            let report: ReconciliationReport = client
                .post_json(&format!(
                    "/api/integrations/{}/reports/{}",
                    cli::encode(&target),
                    cli::encode(&day)
                ))
                .await?;
            cli::print_json(&report)?;
        }
        IntegrationsCommand::DataSets { target } => {
            let sets: Vec<DataSet> = client
                .get_json(&format!(
                    "/api/integrations/{}/data-sets",
                    cli::encode(&target)
                ))
                .await?;
            for set in sets {
                println!(
                    "{:<22} {}  {}",
                    set.name,
                    set.label,
                    set.source
                        .as_deref()
                        .unwrap_or("尚不支持（目录中没有数据来源）")
                );
            }
        }
        IntegrationsCommand::Extract {
            target,
            data_set,
            project,
        } => {
            let done: Enqueued = client
                .send_json(
                    Method::POST,
                    &format!("/api/integrations/{}/extractions", cli::encode(&target)),
                    &ExtractionOrder {
                        data_set,
                        project_number: project,
                    },
                )
                .await?;
            println!("已排队消息：{:?}", done.message_ids);
        }
        IntegrationsCommand::TradeCodes {
            project,
            unified_deal_code,
            bid_section_code,
        } => {
            let codes: TradeCodes = client
                .send_json(
                    Method::PUT,
                    &format!("/api/projects/{}/trade-codes", cli::encode(&project)),
                    &TradeCodes {
                        unified_deal_code,
                        bid_section_code,
                    },
                )
                .await?;
            println!(
                "{project}: 统一交易标识码 {}，标段 {}",
                codes.unified_deal_code, codes.bid_section_code
            );
        }
    }
    Ok(())
}
