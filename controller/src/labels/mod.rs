//! Disc-face labels: templates from `hardware/labels/`, a layout that fits the merge fields into
//! the printable ring of a 120 mm disc, PDF and PNG output, and printing on the disc printers.

pub mod cli;
pub mod layout;
pub mod pdf;
pub mod png;
pub mod template;
pub mod web;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::SqlitePool;
use time::format_description::well_known::Rfc3339;
use witness_drivers::printer::{DiscPrinter, FolderPrinter, IppPrinter, PrintError, PrintRequest};
use witness_schemas::api::PrinterInfo;
use witness_schemas::config::{Config, PrinterKind};
use witness_schemas::media;

use crate::catalog::{self, DiscRow, DISC_SELECT};
use crate::clock::{rfc3339, Clock, CHINA};
use crate::config::Settings;
use crate::error::{Error, ErrorKind, Result};
use crate::{bail, err};

pub use layout::Layout;

/// Where the QR code points when `[labels] base_url` is not set.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
/// WenQuanYi Zen Hei from Debian's `fonts-wqy-zenhei`: TrueType outlines (embeddable as a CID
/// font) and the whole GB 18030 repertoire, so rare characters in project names print.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc";

/// The values of the merge fields for one face.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub project_name: String,
    pub project_number: String,
    pub opening_date: String,
    pub disc_index: i64,
    pub disc_count: i64,
    pub copy_kind: String,
    pub copy_index: i64,
    pub burn_date: String,
    pub catalog_url: String,
    pub organization: String,
    pub volume_id: String,
    pub reject_reason: String,
}

impl Fields {
    pub fn value(&self, field: &str) -> String {
        match field {
            "project_name" => self.project_name.clone(),
            "project_number" => self.project_number.clone(),
            "opening_date" => self.opening_date.clone(),
            "disc_index" => self.disc_index.to_string(),
            "disc_count" => self.disc_count.to_string(),
            "copy_kind" => self.copy_kind.clone(),
            "copy_index" => self.copy_index.to_string(),
            "burn_date" => self.burn_date.clone(),
            "catalog_url" => self.catalog_url.clone(),
            "organization" => self.organization.clone(),
            "volume_id" => self.volume_id.clone(),
            "reject_reason" => self.reject_reason.clone(),
            // The template check refuses unknown fields before any value is asked for.
            _ => String::new(),
        }
    }
}

/// A rendered face.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub layout: Layout,
    pub pdf: Vec<u8>,
    pub png: Vec<u8>,
}

/// The `[labels]` settings with defaults applied.
#[derive(Debug, Clone)]
pub struct LabelSettings {
    pub base_url: String,
    pub template: String,
    pub reject_template: String,
    pub template_dir: Option<PathBuf>,
    pub font: PathBuf,
}

impl LabelSettings {
    pub fn from_config(config: &Config) -> Result<LabelSettings> {
        let labels = &config.labels;
        let base_url = labels
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let rest = base_url
            .strip_prefix("http://")
            .or_else(|| base_url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(['#', '?', ' '])) {
            bail!(
                InvalidArgument,
                "[labels] base_url {base_url:?} 须为 http:// 或 https:// 开头的网页地址，不含 # 和 ? (bad base URL)"
            );
        }
        Ok(LabelSettings {
            base_url: base_url.trim_end_matches('/').to_string(),
            template: labels.template.clone().unwrap_or_else(|| "standard".into()),
            reject_template: labels
                .reject_template
                .clone()
                .unwrap_or_else(|| "reject".into()),
            template_dir: labels.template_dir.clone(),
            font: labels
                .font
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT)),
        })
    }

    /// The project page of the web UI (what the QR code opens).
    pub fn catalog_url(&self, project_number: &str) -> String {
        format!(
            "{}/#/projects/{}",
            self.base_url,
            crate::cli::encode(project_number)
        )
    }
}

/// Checks `[labels]` and `[[printers]]` at start-up so a typo fails before the first burn.
pub fn check_config(config: &Config, data_dir: &Path) -> Result<()> {
    let labels = LabelSettings::from_config(config)?;
    for name in [&labels.template, &labels.reject_template] {
        template::load(name, labels.template_dir.as_deref())?;
    }
    build_printers(config, data_dir)?;
    Ok(())
}

/// The configured printers, or one folder printer under the data folder.
pub fn build_printers(config: &Config, data_dir: &Path) -> Result<Vec<Arc<dyn DiscPrinter>>> {
    let mut printers: Vec<Arc<dyn DiscPrinter>> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for printer in &config.printers {
        let name = &printer.name;
        if !names.insert(name.clone()) {
            bail!(
                InvalidArgument,
                "打印机名称 {name:?} 重复 (printer name used twice)"
            );
        }
        match printer.kind {
            PrinterKind::Ipp => {
                if printer.path.is_some() {
                    bail!(
                        InvalidArgument,
                        "打印机 {name}: path 只用于 kind = \"folder\""
                    );
                }
                let Some(uri) = &printer.uri else {
                    bail!(
                        InvalidArgument,
                        "打印机 {name}: IPP 打印机需要 uri = \"ipp://主机:631/printers/队列名\""
                    );
                };
                printers.push(Arc::new(IppPrinter::new(name, uri).map_err(print_error)?));
            }
            PrinterKind::Folder => {
                if printer.uri.is_some() {
                    bail!(InvalidArgument, "打印机 {name}: uri 只用于 kind = \"ipp\"");
                }
                printers.push(Arc::new(FolderPrinter {
                    name: name.clone(),
                    path: printer
                        .path
                        .clone()
                        .unwrap_or_else(|| data_dir.join("printers").join(name)),
                }));
            }
        }
    }
    if printers.is_empty() {
        printers.push(Arc::new(FolderPrinter {
            name: "folder1".into(),
            path: data_dir.join("printers").join("folder1"),
        }));
    }
    Ok(printers)
}

pub fn print_error(e: PrintError) -> Error {
    let kind = match &e {
        PrintError::Unreachable { .. } => ErrorKind::Unavailable,
        PrintError::Refused { .. } => ErrorKind::FailedPrecondition,
        PrintError::Unsupported { .. } => ErrorKind::InvalidArgument,
        PrintError::Protocol { .. } | PrintError::Io { .. } => ErrorKind::Internal,
    };
    Error::new(kind, format!("打印盘面失败 (printing failed): {e}"))
}

/// Lays out and draws template `template_name` with `fields`. CPU-bound (tens of
/// milliseconds): async callers use [`render_blocking`].
pub fn render(labels: &LabelSettings, template_name: &str, fields: &Fields) -> Result<Rendered> {
    let template = template::load(template_name, labels.template_dir.as_deref())?;
    let font = layout::Font::load(&labels.font)?;
    let layout = layout::lay_out(&template, &font, &|f| fields.value(f))?;
    let title = format!(
        "{} {}/{}",
        fields.project_number, fields.disc_index, fields.disc_count
    );
    let pdf = pdf::render(&layout, &title)?;
    let png = png::render(&layout, png::DEFAULT_DPI)?;
    Ok(Rendered { layout, pdf, png })
}

pub async fn render_blocking(
    labels: LabelSettings,
    template_name: String,
    fields: Fields,
) -> Result<Rendered> {
    tokio::task::spawn_blocking(move || render(&labels, &template_name, &fields))
        .await
        .map_err(|e| err!(Internal, "rendering task: {e}"))?
}

/// `2026-01-05T09:30:00+08:00` → `2026-01-05 09:30` (China Standard Time); other text as is.
fn minute(rfc: &str) -> String {
    match time::OffsetDateTime::parse(rfc, &Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(CHINA);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => rfc.to_string(),
    }
}

fn day(rfc: &str) -> String {
    minute(rfc).chars().take(10).collect()
}

fn copy_kind(kind: &str, medium: &str) -> String {
    if kind == "disk" {
        return "硬盘".into();
    }
    match media::medium(medium) {
        Some(m) => format!("光盘 {}", m.name),
        None => "光盘".into(),
    }
}

/// The fields of an existing disc (`discs` row).
pub async fn disc_fields(
    pool: &SqlitePool,
    settings: &Settings,
    disc: &DiscRow,
    rejected: Option<&str>,
) -> Result<Fields> {
    let labels = LabelSettings::from_config(&settings.config)?;
    let project = catalog::project(pool, &disc.project_number).await?;
    Ok(Fields {
        project_name: project.name.clone(),
        project_number: project.number.clone(),
        opening_date: minute(&project.opening),
        disc_index: disc.set_index,
        disc_count: disc.set_count,
        copy_kind: copy_kind(&disc.kind, &disc.medium),
        copy_index: disc.copy_index,
        burn_date: day(&disc.created_at),
        catalog_url: labels.catalog_url(&project.number),
        organization: settings.config.archive.organization.clone(),
        volume_id: disc.volume_id.clone(),
        reject_reason: short_reason(rejected.unwrap_or_default()),
    })
}

/// A burn or verify error can run to several lines of xorriso output; the face gets its first
/// 100 characters (the catalog keeps all of it), so a long message never stops the REJECT print.
fn short_reason(reason: &str) -> String {
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    match reason.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    }
}

pub async fn disc_row(pool: &SqlitePool, disc_id: i64) -> Result<DiscRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{DISC_SELECT} WHERE d.id = ?")))
        .bind(disc_id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| err!(NotFound, "光盘 {disc_id} 不存在 (no such disc)"))
}

/// The fields of disc `disc_index` of a project that may not be burned yet: the disc count of
/// its latest plan (1 before any), today as the burn date, the first optical copy.
pub async fn preview_fields(
    pool: &SqlitePool,
    settings: &Settings,
    clock: &dyn Clock,
    number: &str,
    disc_index: Option<i64>,
) -> Result<Fields> {
    let labels = LabelSettings::from_config(&settings.config)?;
    let project = catalog::project(pool, number).await?;
    let planned: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT v.set_count, j.medium, v.volume_id FROM volumes v JOIN jobs j ON j.id = v.job_id
         WHERE j.project_id = ? ORDER BY j.id DESC, v.set_index LIMIT 1",
    )
    .bind(project.id)
    .fetch_optional(pool)
    .await?;
    let (disc_count, medium, volume_id) = match planned {
        Some(p) => p,
        None => (
            1,
            settings
                .drives
                .first()
                .map(|d| d.info().medium)
                .unwrap_or_default(),
            String::new(),
        ),
    };
    let disc_index = disc_index.unwrap_or(1);
    if disc_index < 1 || disc_index > disc_count {
        bail!(
            InvalidArgument,
            "第 {disc_index} 张不存在：项目 {number} 共 {disc_count} 张光盘 (disc index out of range)"
        );
    }
    Ok(Fields {
        project_name: project.name.clone(),
        project_number: project.number.clone(),
        opening_date: minute(&project.opening),
        disc_index,
        disc_count,
        copy_kind: copy_kind("optical", &medium),
        copy_index: 1,
        burn_date: day(&rfc3339(clock.now())),
        catalog_url: labels.catalog_url(&project.number),
        organization: settings.config.archive.organization.clone(),
        volume_id,
        reject_reason: String::new(),
    })
}

/// A face that went to a printer (one row of `label_prints`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelPrint {
    /// The printer's configured name.
    pub printer: String,
    /// What the printer gave back: the IPP job id, or the PDF a folder printer wrote.
    pub reference: String,
}

/// Renders the face of disc `disc_id` (a row of `discs`) and prints it on the first configured
/// printer, then records the print in `label_prints`. `rejected: Some(reason)` prints the
/// REJECT face instead (a disc that failed burning or verification, on its way to the reject
/// bin). Hard-disk copies have no face to print.
pub async fn print_disc_face(
    pool: &SqlitePool,
    settings: &Settings,
    clock: &dyn Clock,
    disc_id: i64,
    rejected: Option<&str>,
) -> Result<LabelPrint> {
    let disc = disc_row(pool, disc_id).await?;
    if disc.kind == "disk" {
        bail!(
            FailedPrecondition,
            "副本 {disc_id} 是硬盘副本，没有可打印的盘面 (disk copies have no disc face)"
        );
    }
    let labels = LabelSettings::from_config(&settings.config)?;
    let fields = disc_fields(pool, settings, &disc, rejected).await?;
    let template_name = match rejected {
        Some(_) => labels.reject_template.clone(),
        None => labels.template.clone(),
    };
    let rendered = render_blocking(labels, template_name.clone(), fields.clone()).await?;
    let printers = build_printers(&settings.config, &settings.data_dir)?;
    let printer = Arc::clone(&printers[0]);
    let request = PrintRequest {
        title: format!(
            "{} {}/{}{}",
            fields.project_number,
            fields.disc_index,
            fields.disc_count,
            if rejected.is_some() { " REJECT" } else { "" }
        ),
        file_stem: match rejected {
            Some(_) => format!("disc-{disc_id}-reject"),
            None => format!("disc-{disc_id}"),
        },
        pdf: rendered.pdf,
        png: rendered.png,
    };
    let receipt = tokio::task::spawn_blocking(move || printer.print(&request))
        .await
        .map_err(|e| err!(Internal, "printing task: {e}"))?
        .map_err(print_error)?;
    // Printed first, recorded after: a crash between the two can only repeat a print (a
    // duplicate label on a disc not yet shelved), never record one that did not happen.
    sqlx::query(
        "INSERT INTO label_prints (disc_id, template, rejected, printer, reference, printed_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(disc_id)
    .bind(&template_name)
    .bind(rejected)
    .bind(&receipt.printer)
    .bind(&receipt.reference)
    .bind(rfc3339(clock.now()))
    .execute(pool)
    .await?;
    tracing::info!(
        disc_id,
        printer = %receipt.printer,
        reference = %receipt.reference,
        rejected = rejected.is_some(),
        "disc face printed"
    );
    Ok(LabelPrint {
        printer: receipt.printer,
        reference: receipt.reference,
    })
}

/// The configured printers and their states; a printer that does not answer is listed as
/// `unreachable` with the reason, not dropped.
pub async fn printer_states(settings: &Settings) -> Result<Vec<PrinterInfo>> {
    let printers = build_printers(&settings.config, &settings.data_dir)?;
    let kinds: Vec<&'static str> = settings
        .config
        .printers
        .iter()
        .map(|p| match p.kind {
            PrinterKind::Ipp => "ipp",
            PrinterKind::Folder => "folder",
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        printers
            .iter()
            .enumerate()
            .map(|(i, p)| match p.state() {
                Ok(state) => PrinterInfo {
                    name: state.name,
                    kind: state.kind.into(),
                    state: state.state.as_str().into(),
                    reasons: state.reasons,
                },
                Err(e) => PrinterInfo {
                    name: p.name().into(),
                    kind: kinds.get(i).copied().unwrap_or("folder").into(),
                    state: "unreachable".into(),
                    reasons: vec![e.to_string()],
                },
            })
            .collect()
    })
    .await
    .map_err(|e| err!(Internal, "printer state task: {e}"))
}
