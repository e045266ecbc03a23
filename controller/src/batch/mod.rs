//! Batch import (批量导入): the downloadable .xlsx template, and an uploaded sheet turned into
//! projects, sources and backup jobs after every row and cell was checked.

pub mod cli;
#[cfg(test)]
mod tests;
pub mod web;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{DataValidation, DataValidationRule, Format, Note, Workbook, XlsxError};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};
use witness_schemas::api::{Category, NewProject};
use witness_schemas::schedule::{BackupResult, BatchReport, RowError};

use crate::catalog::{self, FoundSources};
use crate::clock::{rfc3339, CHINA};
use crate::error::Result;
use crate::jobs::{BackupOptions, Engine, JobOrigin, MAX_PRIORITY};
use crate::{bail, err};

/// The sheet the template holds the rows in.
pub const SHEET: &str = "批量刻录";

/// The columns, in template order, with whether a value is required.
pub const COLUMNS: [(&str, bool); 7] = [
    (NUMBER, true),
    (NAME, true),
    (CATEGORY, true),
    (OPENING, true),
    (SOURCES, true),
    (COPIES, false),
    (PRIORITY, false),
];
const NUMBER: &str = "项目编号";
const NAME: &str = "项目名称";
const CATEGORY: &str = "项目类别";
const OPENING: &str = "开标日期";
const SOURCES: &str = "源文件夹";
const COPIES: &str = "光盘份数";
const PRIORITY: &str = "优先级";
const REMARK: &str = "备注";

/// At most this many optical copies per job from a sheet (a typo like 30 is refused).
const MAX_COPIES: i64 = 5;
/// Uploaded workbooks larger than this are refused before they are parsed.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Rows a sheet may hold.
const MAX_ROWS: usize = 2000;

/// The template: header row with notes, input rules (lists, whole numbers), an example row
/// and an instructions sheet.
pub fn template() -> Result<Vec<u8>> {
    build_template().map_err(|e| err!(Internal, "writing the template: {e}"))
}

fn build_template() -> std::result::Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let header = Format::new().set_bold().set_background_color("#E3EFE9");
    let text = Format::new().set_num_format("@");
    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET)?;
    let notes = [
        "必填。与目录中已有项目、与本表其他行都不能重复。",
        "必填，最多 200 个字符。",
        "必填，下拉选择：工程建设、政府采购、土地使用权、矿业权、国有产权。",
        "必填。日期（2026-03-18）或日期时间（2026-03-18 09:30），北京时间。",
        "必填。设备上的绝对路径，多个用分号（;）分隔；必须在允许的导入目录（source_roots）内。",
        "选填，0–5 的整数；不填按系统配置的光盘份数。",
        "选填，0（最低）–9（最高）的整数；不填为 5。等待越久优先级越高（老化），低优先级作业不会饿死。",
        "选填，不导入。",
    ];
    let mut headers: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    headers.push(REMARK);
    for (col, (title, note)) in headers.iter().zip(notes).enumerate() {
        let col = col as u16;
        sheet.write_string_with_format(0, col, *title, &header)?;
        sheet.insert_note(
            0,
            col,
            &Note::new(note).set_author("Witness").set_width(320),
        )?;
        sheet.set_column_width(col, if *title == SOURCES { 48 } else { 18 })?;
    }
    sheet.set_freeze_panes(1, 0)?;
    // Numbers and folders are text: Excel would otherwise turn 2026-001 into a date.
    for col in [0u16, 1, 4] {
        sheet.set_column_format(col, &text)?;
    }
    let last = MAX_ROWS as u32;
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.label_zh()).collect();
    sheet.add_data_validation(
        1,
        2,
        last,
        2,
        &DataValidation::new()
            .allow_list_strings(&categories)?
            .set_error_title("项目类别")?
            .set_error_message("请从下拉列表选择项目类别")?,
    )?;
    sheet.add_data_validation(
        1,
        5,
        last,
        5,
        &DataValidation::new()
            .allow_whole_number(DataValidationRule::Between(0, MAX_COPIES as i32))
            .set_error_message("光盘份数应为 0–5 的整数")?,
    )?;
    sheet.add_data_validation(
        1,
        6,
        last,
        6,
        &DataValidation::new()
            .allow_whole_number(DataValidationRule::Between(0, MAX_PRIORITY as i32))
            .set_error_message("优先级应为 0–9 的整数")?,
    )?;
    let example = [
        "示例-删除本行",
        "XX县城区道路改造工程施工",
        "工程建设",
        "2026-03-18 09:30",
        "/srv/incoming/XX县城区道路改造",
        "1",
        "5",
        "示例行：导入前请删除",
    ];
    for (col, value) in example.iter().enumerate() {
        sheet.write_string(1, col as u16, *value)?;
    }
    let help = workbook.add_worksheet();
    help.set_name("说明")?;
    let lines = [
        "Witness 见证 批量刻录模板",
        "1. 在「批量刻录」表中每行填写一个项目，第一行为表头，请勿修改表头。",
        "2. 上传前可先「仅校验」：系统逐行逐列检查，错误以「第 N 行 列名：原因」列出，不保存任何数据。",
        "3. 正式导入时，无错误的行登记为项目、登记源文件并建立备份作业；有错误的行不保存，请改正后只重新导入这些行。",
        "4. 示例行的项目编号以「示例」开头，导入前请删除。",
    ];
    for (row, line) in lines.iter().enumerate() {
        help.write_string(row as u32, 0, *line)?;
    }
    help.set_column_width(0, 100)?;
    workbook.save_to_buffer()
}

/// One checked row, ready to store.
struct ValidRow {
    row: u32,
    project: NewProject,
    sources: FoundSources,
    copies: Option<i64>,
    priority: Option<i64>,
}

/// Reads the sheet and checks every row; returns the valid rows and every error.
fn check_rows(
    engine: &Engine,
    bytes: &[u8],
    existing: &HashSet<String>,
) -> Result<(u32, Vec<ValidRow>, Vec<RowError>)> {
    if bytes.len() > MAX_BYTES {
        bail!(
            PayloadTooLarge,
            "工作簿过大（最多 {} MB）(workbook too large)",
            MAX_BYTES >> 20
        );
    }
    // calamine is robust, but a hostile zip must never take the daemon down with it.
    let range = std::panic::catch_unwind(|| -> Result<calamine::Range<Data>> {
        let mut workbook = Xlsx::new(std::io::Cursor::new(bytes))
            .map_err(|e| err!(InvalidArgument, "不是有效的 .xlsx 工作簿：{e}"))?;
        let names = workbook.sheet_names();
        let name = names
            .iter()
            .find(|n| n.as_str() == SHEET)
            .or_else(|| names.first())
            .cloned()
            .ok_or_else(|| err!(InvalidArgument, "工作簿中没有工作表 (no sheet)"))?;
        workbook
            .worksheet_range(&name)
            .map_err(|e| err!(InvalidArgument, "工作表「{name}」无法读取：{e}"))
    })
    .map_err(|_| err!(InvalidArgument, "工作簿已损坏，无法解析（读取器异常终止）"))??;
    let (first_row, _) = range.start().unwrap_or((0, 0));
    let (height, width) = (range.height(), range.width());
    let cell = |r: usize, c: usize| range.get((r, c)).unwrap_or(&Data::Empty);
    // Headers are matched by name, so the order of columns does not matter.
    let mut columns: HashMap<&str, usize> = HashMap::new();
    for c in 0..width {
        let title = text_of(cell(0, c)).replace([' ', '\u{3000}', '*'], "");
        if let Some((name, _)) = COLUMNS.iter().find(|(n, _)| *n == title) {
            columns.insert(name, c);
        }
    }
    if first_row != 0 {
        bail!(
            InvalidArgument,
            "表头应在第 1 行（{SHEET}表）(the header must be row 1)"
        );
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .filter(|(n, required)| *required && !columns.contains_key(n))
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        bail!(
            InvalidArgument,
            "第 1 行缺少表头：{}（请使用下载的模板）(missing columns)",
            missing.join("、")
        );
    }
    if height > MAX_ROWS + 1 {
        bail!(
            InvalidArgument,
            "行数过多：最多 {MAX_ROWS} 行 (too many rows)"
        );
    }
    let policy = engine.source_policy();
    let mut errors = Vec::new();
    let mut valid = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut rows = 0u32;
    for r in 1..height {
        let row = r as u32 + 1;
        let get = |name: &str| {
            columns
                .get(name)
                .map(|&c| cell(r, c))
                .unwrap_or(&Data::Empty)
        };
        if COLUMNS.iter().all(|(n, _)| text_of(get(n)).is_empty()) {
            continue;
        }
        rows += 1;
        let mut row_errors = Vec::new();
        let mut fail = |column: &str, message: String| {
            row_errors.push(RowError {
                row,
                column: column.to_string(),
                message,
            })
        };
        for (name, required) in COLUMNS {
            if required && text_of(get(name)).is_empty() {
                fail(name, format!("{name}不能为空"));
            }
        }
        let number = text_of(get(NUMBER));
        if !number.is_empty() {
            if let Err(e) = crate::paths::check_project_number(&number) {
                fail(NUMBER, e.message);
            } else if let Some(first) = seen.get(&number) {
                fail(NUMBER, format!("项目编号 {number} 与第 {first} 行重复"));
            } else if existing.contains(&number) {
                fail(NUMBER, format!("项目编号 {number} 已存在于目录中"));
            }
            seen.entry(number.clone()).or_insert(row);
        }
        let name = text_of(get(NAME));
        if name.chars().count() > 200 {
            fail(NAME, "项目名称过长（最多 200 个字符）".into());
        }
        let category_text = text_of(get(CATEGORY));
        let category = Category::parse(&category_text);
        if !category_text.is_empty() && category.is_none() {
            let known: Vec<&str> = Category::ALL.iter().map(|c| c.label_zh()).collect();
            fail(
                CATEGORY,
                format!(
                    "未知的项目类别「{category_text}」，可选：{}",
                    known.join("、")
                ),
            );
        }
        let opening = match get(OPENING) {
            Data::Empty => None,
            value => match opening_of(value) {
                Ok(t) => Some(t),
                Err(message) => {
                    fail(OPENING, message);
                    None
                }
            },
        };
        let sources_text = text_of(get(SOURCES));
        let paths: Vec<String> = sources_text
            .split([';', '；', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        let sources = if paths.is_empty() {
            None
        } else {
            match catalog::find_sources(&policy, &paths) {
                Ok(found) if found.is_empty() => {
                    fail(SOURCES, format!("源文件夹 {sources_text} 中没有文件"));
                    None
                }
                Ok(found) => Some(found),
                Err(e) => {
                    fail(SOURCES, e.message);
                    None
                }
            }
        };
        let copies = whole_number(get(COPIES), 0, MAX_COPIES, COPIES, &mut fail);
        let priority = whole_number(get(PRIORITY), 0, MAX_PRIORITY, PRIORITY, &mut fail);
        if row_errors.is_empty() {
            if let (Some(category), Some(opening), Some(sources)) = (category, opening, sources) {
                valid.push(ValidRow {
                    row,
                    project: NewProject {
                        number,
                        name: name.trim().to_string(),
                        category,
                        opening: rfc3339(opening),
                    },
                    sources,
                    copies,
                    priority,
                });
            }
        }
        errors.extend(row_errors);
    }
    if rows == 0 {
        bail!(InvalidArgument, "表中没有数据行 (no data rows)");
    }
    Ok((rows, valid, errors))
}

/// A cell as trimmed text (numbers as written, e.g. 3 not 3.0).
fn text_of(value: &Data) -> String {
    match value {
        Data::String(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::DateTime(d) => d.as_f64().to_string(),
        Data::Error(e) => format!("#{e:?}"),
        Data::Empty => String::new(),
    }
}

/// An opening date from a date cell or text (`2026-03-18`, `2026-03-18 09:30`, `2026/3/18`,
/// or RFC 3339); a date alone means midnight, China Standard Time.
fn opening_of(value: &Data) -> std::result::Result<OffsetDateTime, String> {
    let bad = |shown: &str| {
        format!("开标日期「{shown}」无效：应为 2026-03-18 或 2026-03-18 09:30（北京时间）")
    };
    match value {
        Data::DateTime(d) if d.is_datetime() => {
            let (y, m, day, h, min, s, _) = d.to_ymd_hms_milli();
            let date = time::Month::try_from(m)
                .ok()
                .and_then(|m| Date::from_calendar_date(i32::from(y), m, day).ok());
            let at = Time::from_hms(h, min, s).ok();
            match (date, at) {
                (Some(date), Some(at)) => Ok(PrimitiveDateTime::new(date, at).assume_offset(CHINA)),
                _ => Err(bad(&d.as_f64().to_string())),
            }
        }
        value => {
            let text = text_of(value);
            parse_opening(&text).ok_or_else(|| bad(&text))
        }
    }
}

fn parse_opening(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(t.to_offset(CHINA));
    }
    let normal = text.replace('/', "-").replace('T', " ");
    let (date_text, time_text) = match normal.split_once(' ') {
        Some((d, t)) => (d.to_string(), Some(t.trim().to_string())),
        None => (normal.clone(), None),
    };
    let mut parts = date_text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    let at = match time_text {
        None => Time::MIDNIGHT,
        Some(t) => Time::parse(&t, format_description!("[hour]:[minute]"))
            .or_else(|_| Time::parse(&t, format_description!("[hour]:[minute]:[second]")))
            .ok()?,
    };
    Some(PrimitiveDateTime::new(date, at).assume_offset(CHINA))
}

fn whole_number(
    value: &Data,
    min: i64,
    max: i64,
    column: &str,
    fail: &mut impl FnMut(&str, String),
) -> Option<i64> {
    let text = text_of(value);
    if text.is_empty() {
        return None;
    }
    match text.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            fail(
                column,
                format!("{column}「{text}」无效：应为 {min}–{max} 的整数"),
            );
            None
        }
    }
}

/// Checks an uploaded sheet and, unless `dry_run`, stores its valid rows (projects and sources
/// in one transaction) and queues one backup job per stored row.
pub async fn import(engine: &Arc<Engine>, bytes: Vec<u8>, dry_run: bool) -> Result<BatchReport> {
    let existing: Vec<(String,)> = sqlx::query_as("SELECT number FROM projects")
        .fetch_all(&engine.pool)
        .await?;
    let existing: HashSet<String> = existing.into_iter().map(|(n,)| n).collect();
    let checker = Arc::clone(engine);
    // Walking source folders and parsing the zip block: off the async threads.
    let (rows, valid, errors) =
        tokio::task::spawn_blocking(move || check_rows(&checker, &bytes, &existing))
            .await
            .map_err(|e| err!(Internal, "import thread failed: {e}"))??;
    let mut report = BatchReport {
        dry_run,
        rows,
        valid_rows: valid.len() as u32,
        errors,
        results: Vec::new(),
    };
    if dry_run || valid.is_empty() {
        return Ok(report);
    }
    let now = engine.clock.now();
    let mut tx = engine.pool.begin().await?;
    let mut stored = Vec::new();
    for row in &valid {
        // A project registered by someone else since the check fails the whole import:
        // nothing of it is stored, and the error names the row.
        let id = catalog::insert_project(&mut tx, &row.project, now)
            .await
            .map_err(|e| e.context(format!("第 {} 行（未导入任何行）", row.row)))?;
        catalog::insert_sources(&mut tx, id, &row.project.number, &row.sources, now)
            .await
            .map_err(|e| e.context(format!("第 {} 行（未导入任何行）", row.row)))?;
        sqlx::query(
            "INSERT INTO batch_pending (project_id, priority, copies_optical, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(row.priority)
        .bind(row.copies)
        .bind(rfc3339(now))
        .execute(&mut *tx)
        .await?;
        stored.push(id);
    }
    tx.commit().await?;
    for id in &stored {
        crate::search::notify(&engine.pool, crate::search::Change::Project(*id));
    }
    tracing::info!(rows = valid.len(), "batch import stored");
    report.results = finish_pending(engine, &stored).await?;
    Ok(report)
}

/// Makes the backup job of every stored batch row that has none yet (`only`: just these
/// projects; empty: all of them, as at start-up after a crash). A row whose project already
/// has a batch job is done; a row whose job cannot be made (e.g. no drive) is reported and
/// dropped, the project stays registered for 一键备份.
pub async fn finish_pending(engine: &Arc<Engine>, only: &[i64]) -> Result<Vec<BackupResult>> {
    // The import and the scheduler's tick may both get here; one at a time.
    static PENDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = PENDING.lock().await;
    let pending: Vec<(i64, String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT b.project_id, p.number, b.priority, b.copies_optical FROM batch_pending b
         JOIN projects p ON p.id = b.project_id ORDER BY b.project_id",
    )
    .fetch_all(&engine.pool)
    .await?;
    let mut results = Vec::new();
    for (project_id, number, priority, copies) in pending {
        if !only.is_empty() && !only.contains(&project_id) {
            continue;
        }
        let made: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE project_id = ? AND origin = 'batch' ORDER BY id LIMIT 1",
        )
        .bind(project_id)
        .fetch_optional(&engine.pool)
        .await?;
        let result = match made {
            Some((job,)) => BackupResult {
                project: number,
                job: Some(crate::catalog::job(&engine.pool, job).await?.to_api()),
                error: None,
            },
            None => {
                let options = BackupOptions {
                    priority,
                    origin: JobOrigin::Batch,
                    schedule_run_id: None,
                    copies_optical: copies,
                };
                engine.submit_for_list(number, options).await?
            }
        };
        sqlx::query("DELETE FROM batch_pending WHERE project_id = ?")
            .bind(project_id)
            .execute(&engine.pool)
            .await?;
        results.push(result);
    }
    Ok(results)
}
