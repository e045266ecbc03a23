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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon: catalog, jobs, API and web UI.
    Serve {
        /// Data folder (catalog, staging, virtual drives). Default ./var.
        #[arg(long)]
        data: Option<PathBuf>,
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
    },
    /// Lists jobs.
    Jobs {
        #[arg(long)]
        json: bool,
    },
    /// Lists discs and disk copies.
    Discs {
        #[arg(long)]
        json: bool,
    },
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
    let client = Client::new(&args.server);
    match args.command {
        Command::Serve {
            data,
            listen,
            config,
            demo,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
                )
                .init();
            serve(ServeOptions {
                data,
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
        Command::Backup { project, wait } => {
            let job = client.backup(&project).await?;
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
        Command::Discs { json } => {
            let discs = client.discs().await?;
            if json {
                cli::print_json(&discs)?;
            } else {
                cli::print_discs(&discs);
            }
        }
    }
    Ok(())
}
