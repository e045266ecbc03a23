//! JSON bodies of the controller's REST API (`/api/...`), shared by the daemon, the CLI and tests.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The five kinds of trading a public-resource trading center handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 工程建设
    Construction,
    /// 政府采购
    Procurement,
    /// 土地使用权
    Land,
    /// 矿业权
    Mining,
    /// 国有产权
    Property,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Construction,
        Category::Procurement,
        Category::Land,
        Category::Mining,
        Category::Property,
    ];

    /// The code used on the wire, in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Construction => "construction",
            Category::Procurement => "procurement",
            Category::Land => "land",
            Category::Mining => "mining",
            Category::Property => "property",
        }
    }

    /// The Chinese name printed on discs and shown in the UI.
    pub fn label_zh(self) -> &'static str {
        match self {
            Category::Construction => "工程建设",
            Category::Procurement => "政府采购",
            Category::Land => "土地使用权",
            Category::Mining => "矿业权",
            Category::Property => "国有产权",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == text || c.label_zh() == text)
    }
}

/// Where a project stands in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// Registered, not yet archived.
    Registered,
    /// A backup job is running.
    Archiving,
    /// At least one package has every required copy verified.
    Archived,
    /// The last backup failed.
    Failed,
}

/// A trading project (项目) in the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Project {
    /// 项目编号, unique.
    pub number: String,
    pub name: String,
    pub category: Category,
    /// Bid opening time (开标时间), RFC 3339.
    pub opening: String,
    pub status: ProjectStatus,
    pub file_count: i64,
    pub total_bytes: i64,
    pub created_at: String,
}

/// Body of `POST /api/projects`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewProject {
    pub number: String,
    pub name: String,
    pub category: Category,
    /// RFC 3339, e.g. `2026-03-18T09:30:00+08:00`.
    pub opening: String,
}

/// What a source file is, judged by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Document,
    Video,
    Audio,
    Other,
}

/// One file registered for a project: a document, a video or anything else to archive.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceFile {
    pub id: i64,
    pub project_number: String,
    /// Path inside the archive package's `data/` folder, `/`-separated.
    pub rel_path: String,
    /// Where the controller reads the file from.
    pub origin: String,
    pub size: i64,
    pub kind: SourceKind,
    pub added_at: String,
}

/// Body of `POST /api/projects/{number}/sources`: paths on the appliance to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddSources {
    pub paths: Vec<String>,
}

/// The lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// The persisted steps of a backup job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStep {
    Collect,
    Package,
    Plan,
    Burn,
    Verify,
    Record,
    Done,
}

impl JobStep {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStep::Collect => "collect",
            JobStep::Package => "package",
            JobStep::Plan => "plan",
            JobStep::Burn => "burn",
            JobStep::Verify => "verify",
            JobStep::Record => "record",
            JobStep::Done => "done",
        }
    }
}

/// A backup job (一键备份 creates one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: i64,
    pub project_number: String,
    pub status: JobStatus,
    pub step: JobStep,
    /// Bytes handled so far in the current step.
    pub done_bytes: i64,
    /// Bytes the current step has to handle.
    pub total_bytes: i64,
    /// What the job is doing now, in Chinese, for the UI.
    pub message: String,
    pub error: Option<String>,
    /// Copies the copy policy asks for (every disc of the set, and each disk copy).
    pub copies_expected: i64,
    pub copies_verified: i64,
    /// 0 (lowest) … 9 (highest); waiting raises it (ageing, see `[jobs] ageing_minutes`).
    #[serde(default)]
    pub priority: i64,
    /// Why the job exists: `manual`, `schedule`, `batch` or `reburn`.
    #[serde(default)]
    pub origin: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Optical disc or hard-disk copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CopyKind {
    Optical,
    Disk,
}

/// The state of one physical copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscStatus {
    /// Being written.
    Writing,
    /// Written, read-back not yet done.
    Written,
    /// Read back and every file matched the manifest.
    Verified,
    /// Write or read-back failed; the disc is not a copy.
    Rejected,
}

/// One physical copy: a disc of a set, or a hard-disk copy of the whole package.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Disc {
    pub id: i64,
    pub project_number: String,
    pub job_id: i64,
    pub kind: CopyKind,
    /// 1-based index of this disc in its set (1 for a disk copy).
    pub set_index: i64,
    pub set_count: i64,
    /// Medium code (`bd-r`, `dvd+r`…) or `disk`.
    pub medium: String,
    /// Drive or disk target name from the configuration.
    pub target: String,
    /// The image file (virtual drive), the device (optical drive) or the directory (disk copy).
    pub location: String,
    pub volume_id: String,
    pub bytes: i64,
    pub status: DiscStatus,
    pub error: Option<String>,
    pub created_at: String,
    pub verified_at: Option<String>,
    /// Where the copy is kept (shelf / cabinet / box), set by the archivist.
    #[serde(default)]
    pub shelf: String,
    /// The latest finished re-inspection (复检): `passed` or `failed` (a failed copy stays
    /// `verified` until its re-burn made a new one, but is no longer to be trusted).
    #[serde(default)]
    pub inspection_result: Option<String>,
    #[serde(default)]
    pub inspected_at: Option<String>,
}

/// A project with everything the catalog knows about it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectDetail {
    pub project: Project,
    pub files: Vec<SourceFile>,
    pub jobs: Vec<Job>,
    pub discs: Vec<Disc>,
}

/// A burner as the controller sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Drive {
    pub name: String,
    /// `virtual` or `optical`.
    pub kind: String,
    pub medium: String,
    pub capacity_bytes: i64,
    /// `/dev/sr0` or the folder of a virtual drive's images.
    pub device: String,
    /// The drive's state as disc publishers show it: `idle`, `loading`, `recording`,
    /// `verifying`, `record_failed`, `verify_failed`, `complete` or `out_of_service`.
    pub state: String,
    /// Verified discs over the drive's life.
    pub good_discs: i64,
    /// Rejected discs (write or read-back failed) over the drive's life.
    pub bad_discs: i64,
    /// Bad discs since the last good one.
    pub failures_in_row: i64,
    /// Why the drive is out of service; `None` while it is in service.
    pub out_of_service_reason: Option<String>,
    /// The disc the state is about.
    pub disc_id: Option<i64>,
}

/// One state change of a drive: which drive did what with which disc, when.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DriveEvent {
    pub id: i64,
    pub drive: String,
    pub state: String,
    pub job_id: Option<i64>,
    pub disc_id: Option<i64>,
    pub detail: Option<String>,
    /// RFC 3339, China Standard Time, with fractions of a second.
    pub at: String,
}

/// Something an operator must see and act on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    /// `drive_out_of_service` or `autoloader`.
    pub kind: String,
    /// The drive or robot concerned.
    pub subject: String,
    pub message: String,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
}

/// One arm move of the disc publishing robot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AutoloaderMove {
    pub seq: u64,
    /// `输入仓 1`, `刻录机 bd1`, `打印机`, `输出仓` or `废盘仓`.
    pub from: String,
    pub to: String,
    pub error: Option<String>,
}

/// The disc publishing robot: bins, counts, where discs are, recent moves.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AutoloaderInfo {
    pub model: String,
    /// Blank discs left per input bin.
    pub input_bins: Vec<u32>,
    pub output_count: u32,
    pub reject_count: u32,
    pub bin_capacity: u32,
    pub drives_loaded: Vec<String>,
    pub printer_loaded: bool,
    pub jammed: Option<String>,
    pub moves: u64,
    pub recent_moves: Vec<AutoloaderMove>,
}

/// Every error answer of the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// Machine-readable kind: `not_found`, `invalid_argument`, `already_exists`,
    /// `failed_precondition`, `unavailable`, `resource_exhausted`, `internal`.
    pub kind: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// A disc face sent to a printer (`POST /api/discs/{id}/print`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LabelPrintResult {
    pub disc_id: i64,
    /// The configured printer's name.
    pub printer: String,
    /// The IPP job (`job 12`) or the PDF file a folder printer wrote.
    pub reference: String,
    /// Whether the REJECT face was printed (the disc is rejected).
    pub rejected: bool,
}

/// A disc printer and its state (`GET /api/printers`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PrinterInfo {
    pub name: String,
    /// `ipp` or `folder`.
    pub kind: String,
    /// `idle`, `processing`, `stopped`, or `unreachable` when the printer did not answer.
    pub state: String,
    /// IPP `printer-state-reasons` (`media-empty-error`…), or the error when unreachable.
    pub reasons: Vec<String>,
}
