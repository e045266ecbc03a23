//! `witness subject …`: legal-person queries, a subject's QR code and the resolution of a
//! scanned one, through the API.

use std::path::PathBuf;

use base64::Engine as _;
use clap::Subcommand;
use witness_schemas::market_subject::{
    AnswerSource, LegalPersonAnswer, QrScan, ScannedSubject, SubjectKind, SubjectQrCode,
};

use crate::cli::{self, Client};

const BASE: &str = "/api/integrations/market_subject_library";

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Basic (or, with --comprehensive, comprehensive) information of a legal person.
    Query {
        /// 统一社会信用代码.
        code: String,
        #[arg(long)]
        comprehensive: bool,
        /// Ask the library even when the cached answer is fresh.
        #[arg(long)]
        refresh: bool,
        #[arg(long)]
        json: bool,
    },
    /// The QR code the library issues for a legal person; --out writes its PNG.
    Qr {
        code: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Resolves the text read from a scanned QR code to its subject.
    Scan { content: String },
}

fn print_answer(answer: &LegalPersonAnswer) {
    let b = &answer.basic;
    let source = match answer.source {
        AnswerSource::Library => "主体库（刚刚查询）".to_string(),
        AnswerSource::Cache => format!("缓存（{} 秒前查询）", answer.age_seconds),
        AnswerSource::StaleCache => format!(
            "过期缓存（{} 秒前查询；主体库暂时无法访问：{}）",
            answer.age_seconds,
            answer.stale_reason.as_deref().unwrap_or("")
        ),
    };
    println!("{}（{}）", b.name, b.credit_code);
    println!("  法定代表人：{}", b.legal_representative);
    println!(
        "  单位类型：{}  经营状态：{}",
        b.subject_type, b.operating_status
    );
    println!(
        "  成立日期：{}  注册资本：{} 万元",
        b.established_on,
        b.registered_capital.as_deref().unwrap_or("—")
    );
    println!("  注册地址：{}", b.address);
    if let Some(r) = &answer.records {
        println!(
            "  资质 {} 项，业绩 {} 项，奖励 {} 项，违法违规 {} 项，黑名单：{}",
            r.qualifications.len(),
            r.performances.len(),
            r.rewards.len(),
            r.violations.len(),
            if r.blacklisted { "在列" } else { "不在列" }
        );
    }
    println!("  来源：{source}");
}

pub async fn run(client: &Client, command: SubjectCommand) -> anyhow::Result<()> {
    match command {
        SubjectCommand::Query {
            code,
            comprehensive,
            refresh,
            json,
        } => {
            let detail = if comprehensive {
                "comprehensive"
            } else {
                "basic"
            };
            let answer: LegalPersonAnswer = client
                .get_json(&format!(
                    "{BASE}/legal-persons/{}?detail={detail}&refresh={refresh}",
                    cli::encode(&code)
                ))
                .await?;
            if json {
                return cli::print_json(&answer);
            }
            print_answer(&answer);
        }
        SubjectCommand::Qr { code, out } => {
            let qr: SubjectQrCode = client
                .get_json(&format!("{BASE}/legal-persons/{}/qr", cli::encode(&code)))
                .await?;
            println!("二维码内容：{}", qr.content);
            println!("有效期至：{}", qr.valid_until);
            if let Some(out) = out {
                let png = base64::engine::general_purpose::STANDARD.decode(&qr.png_base64)?;
                std::fs::write(&out, png)?;
                println!("已写入 {}", out.display());
            }
        }
        SubjectCommand::Scan { content } => {
            let subject: ScannedSubject = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("{BASE}/qr-scans"),
                    &QrScan { content },
                )
                .await?;
            let kind = match subject.subject_kind {
                SubjectKind::LegalPerson => "法人",
                SubjectKind::NaturalPerson => "自然人",
            };
            println!("{kind}：{}（{}）", subject.name, subject.code);
            if let Some(status) = &subject.operating_status {
                println!("  经营状态：{status}");
            }
            if let Some(blacklisted) = subject.blacklisted {
                println!("  黑名单：{}", if blacklisted { "在列" } else { "不在列" });
            }
            println!("  二维码有效期至：{}", subject.valid_until);
        }
    }
    Ok(())
}
