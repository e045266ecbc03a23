//! `witness`: the controller daemon (`witness serve`) and its command-line client.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use witness_controller::cli::{self, Client};
use witness_controller::serve::{serve, ServeOptions};
use witness_schemas::api::NewProject;

#[derive(Parser)]
#[command(
    name = "witness",
    version,
    about = "Witness 见证：评标档案归档系统 (archive appliance controller)"
)]
struct Args {
    /// The daemon to talk to.
    #[arg(
        long,
        global = true,
        env = "WITNESS_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// API token; without one, the admin token of `<data>/admin-credential.txt` is used when the
    /// CLI runs on the appliance.
    #[arg(long, global = true, env = "WITNESS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Data folder of the daemon (catalog, staging, virtual drives). Default ./var.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon: catalog, jobs, API and web UI.
    Serve {
        /// Address to listen on. Default 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// TOML configuration file (see README).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seed demo projects with generated documents and videos.
        #[arg(long)]
        demo: bool,
    },
    /// Trading projects.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Source files of a project.
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// One-click backup (一键备份) of a project.
    Backup {
        #[arg(long)]
        project: String,
        /// Follow the job and exit 0 only when every copy is verified.
        #[arg(long)]
        wait: bool,
        /// 0 (lowest) … 9 (highest); default 5. Waiting jobs gain priority with time.
        #[arg(long)]
        priority: Option<i64>,
    },
    /// Disc faces (盘面): preview, reprint, printers.
    Label {
        #[command(subcommand)]
        command: witness_controller::labels::cli::LabelCommand,
    },
    /// Scheduled burns (定时刻录), in Beijing time.
    Schedule {
        #[command(subcommand)]
        command: witness_controller::schedule::cli::ScheduleCommand,
    },
    /// Batch import from the .xlsx template (批量导入).
    Batch {
        #[command(subcommand)]
        command: witness_controller::batch::cli::BatchCommand,
    },
    /// Kept copies: shelf location and re-inspection (复检).
    Disc {
        #[command(subcommand)]
        command: witness_controller::reinspect::cli::DiscCommand,
    },
    /// Provincial platform integrations (平台对接): status, dead letters, retry, reports.
    Integrations {
        #[command(subcommand)]
        command: witness_controller::integrations::cli::IntegrationsCommand,
    },
    /// Market-subject library (主体库): legal-person queries, subject QR codes, QR scans.
    Subject {
        #[command(subcommand)]
        command: witness_controller::integrations::market_subject::cli::SubjectCommand,
    },
    /// Lists jobs.
    Jobs {
        #[arg(long)]
        json: bool,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Lists discs and disk copies.
    Discs {
        #[arg(long)]
        json: bool,
    },
    /// Full-text search of projects, documents, videos and discs (搜索).
    Search(witness_controller::search::cli::SearchArgs),
    /// Clearing (清标) of construction bids against the bill of quantities; works offline.
    Clearing {
        #[command(subcommand)]
        command: ClearingCommand,
    },
}

#[derive(Subcommand)]
enum ClearingCommand {
    /// Checks and analyses the bids; exit 0 when the run completed (findings are results).
    Run {
        /// The tender's bill with its control price (.xlsx or .json).
        #[arg(long)]
        tender: PathBuf,
        /// One bid as 投标人=FILE; repeat for every bid.
        #[arg(long = "bid", required = true)]
        bids: Vec<String>,
        /// Print findings and analyses as JSON.
        #[arg(long)]
        json: bool,
        /// Write the report (.xlsx, or printable .html).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Clearing configuration (JSON, see schemas/json/clearing.schema.json).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Checks the audit log's hash chain (reads the catalog in --data directly) and names the
    /// first broken record; exit 1 when the chain is broken.
    Verify,
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Registers a project.
    Add {
        #[arg(long)]
        number: String,
        #[arg(long)]
        name: String,
        /// construction, procurement, land, mining or property (or the Chinese name).
        #[arg(long)]
        category: String,
        /// Bid opening time, RFC 3339 (e.g. 2026-03-18T09:30:00+08:00).
        #[arg(long)]
        opening: String,
    },
    /// Lists projects.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SourceCommand {
    /// Registers files or folders on the appliance as sources of a project.
    Add {
        #[arg(long)]
        project: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// The daemon's log output with full resident ID numbers masked (PIPL): file names and error
/// messages may carry them, and the log must not. The formatter writes each event whole.
struct MaskIdNumbers;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskIdNumbers {
    type Writer = MaskedStdout;

    fn make_writer(&'a self) -> MaskedStdout {
        MaskedStdout(std::io::stdout())
    }
}

struct MaskedStdout(std::io::Stdout);

impl std::io::Write for MaskedStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let masked = witness_controller::auth::mask_id_numbers_in(&text);
        self.0.write_all(masked.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("witness: 无法启动运行时：{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("witness: 错误：{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args.data.clone().unwrap_or_else(|| PathBuf::from("var"));
    let token = args
        .token
        .clone()
        .or_else(|| witness_controller::auth::accounts::token_from_credential_file(&data_dir));
    let client = Client::new(&args.server).with_token(token.clone());
    match args.command {
        Command::Clearing {
            command:
                ClearingCommand::Run {
                    tender,
                    bids,
                    json,
                    report,
                    config,
                },
        } => {
            witness_controller::clearing::cli::run(
                &tender,
                &bids,
                json,
                report.as_deref(),
                config.as_deref(),
            )?;
        }
        Command::Serve {
            listen,
            config,
            demo,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
                )
                .with_writer(MaskIdNumbers)
                .init();
            serve(ServeOptions {
                data: args.data.clone(),
                listen,
                config,
                demo,
            })
            .await?;
        }
        Command::Project {
            command:
                ProjectCommand::Add {
                    number,
                    name,
                    category,
                    opening,
                },
        } => {
            let category = cli::parse_category(&category)?;
            let project = client
                .add_project(&NewProject {
                    number,
                    name,
                    category,
                    opening,
                })
                .await?;
            println!("已登记项目 {} {}", project.number, project.name);
        }
        Command::Project {
            command: ProjectCommand::List { json },
        } => {
            let projects = client.projects().await?;
            if json {
                cli::print_json(&projects)?;
            } else {
                cli::print_projects(&projects);
            }
        }
        Command::Source {
            command: SourceCommand::Add { project, paths },
        } => {
            let mut absolute = Vec::new();
            for path in paths {
                // The daemon reads the files, so it gets absolute paths; a missing path is named
                // here already.
                let full = std::fs::canonicalize(&path)
                    .with_context(|| format!("源路径 {} 不存在或不可访问", path.display()))?;
                absolute.push(full.display().to_string());
            }
            let added = client.add_sources(&project, absolute).await?;
            let bytes: i64 = added.iter().map(|f| f.size).sum();
            println!(
                "已为项目 {project} 添加 {} 个文件，共 {bytes} 字节",
                added.len()
            );
        }
        Command::Backup {
            project,
            wait,
            priority,
        } => {
            let job: witness_schemas::api::Job = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("/api/projects/{}/backup", cli::encode(&project)),
                    &witness_schemas::schedule::BackupRequest { priority },
                )
                .await?;
            println!("已创建备份作业 {}（项目 {}）", job.id, job.project_number);
            if wait {
                let job = cli::wait(&client, job.id).await?;
                println!(
                    "作业 {} 完成：{} 份副本全部通过回读校验",
                    job.id, job.copies_verified
                );
            }
        }
        Command::Jobs { json } => {
            let jobs = client.jobs().await?;
            if json {
                cli::print_json(&jobs)?;
            } else {
                cli::print_jobs(&jobs);
            }
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let pool = witness_controller::db::open(&data_dir).await?;
            let result = witness_controller::audit::verify(&pool).await?;
            println!("{}", result.message);
            if result.first_broken.is_some() {
                anyhow::bail!(
                    "审计日志哈希链断裂：第一条异常记录为 {}",
                    result.first_broken.unwrap_or_default()
                );
            }
        }
        Command::Search(search) => {
            witness_controller::search::cli::run(&args.server, token, search).await?;
        }
        Command::Discs { json } => {
            let discs = client.discs().await?;
            if json {
                cli::print_json(&discs)?;
            } else {
                cli::print_discs(&discs);
            }
        }
        Command::Label { command } => {
            witness_controller::labels::cli::run(&client, command).await?;
        }
        Command::Schedule { command } => {
            witness_controller::schedule::cli::run(&client, command).await?;
        }
        Command::Integrations { command } => {
            witness_controller::integrations::cli::run(&client, command).await?;
        }
        Command::Subject { command } => {
            witness_controller::integrations::market_subject::cli::run(&client, command).await?;
        }
        Command::Batch { command } => {
            if !witness_controller::batch::cli::run(&client, command).await? {
                anyhow::bail!("表中有错误行（见上），这些行未导入");
            }
        }
        Command::Disc { command } => {
            if !witness_controller::reinspect::cli::run(&client, command).await? {
                anyhow::bail!("复检未通过");
            }
        }
    }
    Ok(())
}
