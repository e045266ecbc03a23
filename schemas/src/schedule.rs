//! Wire formats of schedules, batch imports, select-and-burn and re-inspections.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{Category, Job};

/// When a schedule fires, in China Standard Time (Asia/Shanghai, no daylight saving).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Once, as soon as the schedule is saved.
    Immediate,
    Daily,
    Weekly,
    /// On `month_day`; a day the month lacks (29–31) means its last day.
    Monthly,
}

/// Which projects a run backs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelectionKind {
    /// Projects whose bid opening (开标, when evaluation takes place) falls after the previous
    /// run and at or before this one, and that have no verified copy yet.
    SinceLastRun,
    /// Projects of one category that have no verified copy yet.
    Category,
    /// The listed projects, every run.
    List,
}

/// A schedule as saved or changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    pub name: String,
    pub rule: RuleKind,
    /// Wall time `HH:MM` (China Standard Time); ignored for `immediate`.
    #[serde(default)]
    pub time: Option<String>,
    /// Weekly: 1 = Monday … 7 = Sunday.
    #[serde(default)]
    pub weekday: Option<u8>,
    /// Monthly: 1 … 31.
    #[serde(default)]
    pub month_day: Option<u8>,
    pub selection: SelectionKind,
    #[serde(default)]
    pub category: Option<Category>,
    #[serde(default)]
    pub numbers: Vec<String>,
    /// 0 … 9 for the jobs it makes; default 5.
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A saved schedule, with its rule in words and its next fire time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    pub rule: RuleKind,
    pub time: String,
    pub weekday: Option<u8>,
    pub month_day: Option<u8>,
    pub selection: SelectionKind,
    pub category: Option<Category>,
    pub numbers: Vec<String>,
    pub priority: i64,
    pub enabled: bool,
    /// The rule in Chinese, e.g. 每月最后一天 02:00.
    pub rule_zh: String,
    /// The selection in Chinese.
    pub selection_zh: String,
    /// The next fire instant (RFC 3339), none for a fired `immediate` or a disabled schedule.
    pub next_fire: Option<String>,
    pub last_fire: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What a run did for one selected project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RunOutcome {
    pub project: String,
    pub job: Option<i64>,
    pub error: Option<String>,
}

/// One fire instant of a schedule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScheduleRun {
    pub id: i64,
    pub schedule_id: i64,
    pub fire_at: String,
    pub window_start: String,
    /// Due instants missed while the appliance was off and folded into this run.
    pub missed: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub jobs_created: i64,
    pub outcome: Vec<RunOutcome>,
}

/// Select and burn: one backup job per listed project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupMany {
    pub numbers: Vec<String>,
    #[serde(default)]
    pub priority: Option<i64>,
}

/// The body of `POST /api/projects/{number}/backup` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    #[serde(default)]
    pub priority: Option<i64>,
}

/// Per-project result of select and burn or of a batch import row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupResult {
    pub project: String,
    pub job: Option<Job>,
    pub error: Option<String>,
}

/// A problem with one cell (or row) of an imported spreadsheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// The spreadsheet row number as Excel shows it (the header is row 1).
    pub row: u32,
    /// The column's Chinese header, e.g. 开标日期.
    pub column: String,
    pub message: String,
}

/// The answer to a batch import.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchReport {
    /// Only validated; nothing was stored.
    pub dry_run: bool,
    /// Data rows read (blank rows skipped).
    pub rows: u32,
    /// Rows without errors (stored, unless dry run).
    pub valid_rows: u32,
    pub errors: Vec<RowError>,
    /// The jobs made for the stored rows.
    pub results: Vec<BackupResult>,
}

/// Sets where a copy is kept.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetShelf {
    pub shelf: String,
}

/// One re-read of a kept copy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Inspection {
    pub id: i64,
    pub disc_id: i64,
    pub project_number: String,
    /// `running`, `passed`, `failed` or `interrupted`.
    pub result: String,
    pub problems: i64,
    pub detail: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The migrate / re-burn job a failed re-read raised.
    pub reburn_job_id: Option<i64>,
}

/// A kept copy and when it is due for its next re-read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InspectionDue {
    pub disc_id: i64,
    pub project_number: String,
    pub kind: String,
    pub shelf: String,
    pub last_inspected: Option<String>,
    pub last_result: Option<String>,
    /// When the next re-read is due (RFC 3339).
    pub due_at: String,
    /// Whether the tighter cycle applies (the copy's error count grew).
    pub tightened: bool,
    pub overdue: bool,
}
