//! `witness schedule …`: list, add, delete schedules and show their runs.

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use reqwest::Method;
use witness_schemas::schedule::{NewSchedule, RuleKind, Schedule, ScheduleRun, SelectionKind};

use crate::cli::{self, Client};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RuleArg {
    Immediate,
    Daily,
    Weekly,
    Monthly,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SelectArg {
    /// Projects opened since the last run with no verified copy yet.
    SinceLastRun,
    /// Projects of one category with no verified copy yet.
    Category,
    /// The projects given with --project.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Lists schedules with their rule in words and next fire time.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Saves a schedule (times are Beijing time, Asia/Shanghai).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        rule: RuleArg,
        /// HH:MM, for daily, weekly and monthly.
        #[arg(long)]
        time: Option<String>,
        /// Weekly: 1 = Monday … 7 = Sunday.
        #[arg(long)]
        weekday: Option<u8>,
        /// Monthly: 1 … 31 (a day the month lacks means its last day).
        #[arg(long)]
        day: Option<u8>,
        #[arg(long, value_enum, default_value = "since-last-run")]
        select: SelectArg,
        /// For --select category: construction, procurement, land, mining, property (or 中文名).
        #[arg(long)]
        category: Option<String>,
        /// For --select list; repeat for every project.
        #[arg(long = "project")]
        projects: Vec<String>,
        /// 0 (lowest) … 9 (highest); default 5.
        #[arg(long)]
        priority: Option<i64>,
    },
    /// Deletes a schedule (its runs and jobs stay recorded).
    Delete { id: i64 },
    /// Lists the runs of a schedule, newest first.
    Runs {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, command: ScheduleCommand) -> anyhow::Result<()> {
    match command {
        ScheduleCommand::List { json } => {
            let schedules: Vec<Schedule> = client.get_json("/api/schedules").await?;
            if json {
                return cli::print_json(&schedules);
            }
            for s in &schedules {
                println!(
                    "{:>4}  {}  {}  {}  下次：{}  {}",
                    s.id,
                    s.name,
                    s.rule_zh,
                    s.selection_zh,
                    s.next_fire.as_deref().unwrap_or("—"),
                    if s.enabled { "" } else { "（已停用）" }
                );
            }
            Ok(())
        }
        ScheduleCommand::Add {
            name,
            rule,
            time,
            weekday,
            day,
            select,
            category,
            projects,
            priority,
        } => {
            let category = category.map(|c| cli::parse_category(&c)).transpose()?;
            let new = NewSchedule {
                name,
                rule: match rule {
                    RuleArg::Immediate => RuleKind::Immediate,
                    RuleArg::Daily => RuleKind::Daily,
                    RuleArg::Weekly => RuleKind::Weekly,
                    RuleArg::Monthly => RuleKind::Monthly,
                },
                time,
                weekday,
                month_day: day,
                selection: match select {
                    SelectArg::SinceLastRun => SelectionKind::SinceLastRun,
                    SelectArg::Category => SelectionKind::Category,
                    SelectArg::List => SelectionKind::List,
                },
                category,
                numbers: projects,
                priority,
                enabled: true,
            };
            let saved: Schedule = client
                .send_json(Method::POST, "/api/schedules", &new)
                .await
                .context("保存定时计划")?;
            println!(
                "定时计划 {} 已保存：{}，{}；下次运行 {}",
                saved.id,
                saved.rule_zh,
                saved.selection_zh,
                saved.next_fire.as_deref().unwrap_or("—")
            );
            Ok(())
        }
        ScheduleCommand::Delete { id } => {
            client.delete(&format!("/api/schedules/{id}")).await?;
            println!("定时计划 {id} 已删除");
            Ok(())
        }
        ScheduleCommand::Runs { id, json } => {
            let runs: Vec<ScheduleRun> = client
                .get_json(&format!("/api/schedules/{id}/runs"))
                .await?;
            if json {
                return cli::print_json(&runs);
            }
            if runs.is_empty() {
                bail!("定时计划 {id} 还没有运行过");
            }
            for run in &runs {
                println!(
                    "{}  作业 {} 个{}{}",
                    run.fire_at,
                    run.jobs_created,
                    if run.missed > 0 {
                        format!("（停机期间错过 {} 次，合并为本次）", run.missed)
                    } else {
                        String::new()
                    },
                    if run.finished_at.is_none() {
                        "  未完成"
                    } else {
                        ""
                    }
                );
                for o in &run.outcome {
                    match (&o.job, &o.error) {
                        (Some(job), _) => println!("    {}  作业 {job}", o.project),
                        (None, Some(e)) => println!("    {}  未建作业：{e}", o.project),
                        _ => {}
                    }
                }
            }
            Ok(())
        }
    }
}
