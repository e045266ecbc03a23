//! The controller's TOML configuration file (`witness serve --config FILE`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole configuration file. Every section is optional; see README.md for the defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// Burners. With none configured and no optical drive found, one virtual BD-R drive is used.
    #[serde(default)]
    pub drives: Vec<DriveConfig>,
    /// Hard-disk copy targets (mounted HDD or USB disk folders).
    #[serde(default)]
    pub disks: Vec<DiskConfig>,
    #[serde(default)]
    pub copies: CopyPolicyConfig,
    #[serde(default)]
    pub archive: ArchiveConfig,
    /// Drive health: when a failing drive is taken out of service (`[burning]`).
    #[serde(default)]
    pub burning: BurningConfig,
    /// A disc publishing robot; without one, discs are loaded and unloaded by hand.
    pub autoloader: Option<AutoloaderConfig>,
    /// Disc-face labels: templates, font, the catalog address in the QR code.
    #[serde(default)]
    pub labels: LabelsConfig,
    /// Disc printers. With none, one folder printer writes into `<data>/printers/folder1`.
    #[serde(default)]
    pub printers: Vec<PrinterConfig>,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub reinspect: ReinspectConfig,
    /// Provincial and city platforms (issue 9): `[integrations.expert_library]` and others.
    #[serde(default)]
    pub integrations: crate::integration::IntegrationsConfig,
    /// NVRs holding evaluation-room video (`[[nvrs]]`, issue 4).
    #[serde(default)]
    pub nvrs: Vec<crate::video::NvrConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; `--listen` overrides it. Default 127.0.0.1:8080.
    pub listen: Option<String>,
    /// Data directory; `--data` overrides it. Default `./var`.
    pub data_dir: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain and private key.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate made on first start (`<data>/tls/`), for the
    /// LAN; gates pin it.
    #[serde(default)]
    pub tls_self_signed: bool,
    /// Largest file the upload API accepts, in bytes. Default 64 GiB.
    pub max_upload_bytes: Option<u64>,
}

/// Whether a drive is a real optical drive or a virtual one writing image files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveKind {
    Optical,
    Virtual,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveConfig {
    pub name: String,
    pub kind: DriveKind,
    /// Medium code: `dvd-r`, `dvd+r`, `dvd-r-dl`, `dvd+r-dl`, `bd-r`, `bd-r-dl`, `bdxl-100`,
    /// `bdxl-128`, `m-disc-dvd`, `m-disc-bd`, `cd-r`.
    pub media: String,
    /// Optical drives: the device, e.g. `/dev/sr0`.
    pub device: Option<PathBuf>,
    /// Virtual drives: where the disc images go. Default `<data>/drives/<name>`.
    pub image_dir: Option<PathBuf>,
    /// Virtual drives only: pretend the medium holds this many bytes instead of its real size.
    pub capacity_bytes: Option<u64>,
    /// Virtual drives only: write no faster than this (bytes per second), like a real drive.
    pub throttle_bytes_per_sec: Option<u64>,
    /// Virtual drives only, for tests and demonstrations: the first `fault_fail_burns` discs
    /// fail with a write error after `fault_fail_after_bytes` (default 1 MiB).
    pub fault_fail_burns: Option<u32>,
    pub fault_fail_after_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskConfig {
    pub name: String,
    pub path: PathBuf,
}

/// Heterogeneous backup (异质备份): how many copies of each kind every package gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyPolicyConfig {
    #[serde(default = "one")]
    pub optical: u32,
    #[serde(default = "one")]
    pub disk: u32,
}

impl Default for CopyPolicyConfig {
    fn default() -> Self {
        CopyPolicyConfig {
            optical: 1,
            disk: 1,
        }
    }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// A package that needs more discs than this is refused before anything is burned.
    #[serde(default = "default_max_discs")]
    pub max_discs_per_package: u32,
    /// Name of the archive (全宗) written into bag-info.txt and the XML record.
    #[serde(default = "default_organization")]
    pub organization: String,
    /// Burn attempts per volume before the job fails (each failed disc is rejected).
    #[serde(default = "default_attempts")]
    pub max_burn_attempts: u32,
    /// Keep the staging copy of a package after every copy is verified.
    #[serde(default)]
    pub keep_staging: bool,
    /// Folders sources may be registered from (`witness source add`); empty: anywhere outside
    /// the data folder.
    #[serde(default)]
    pub source_roots: Vec<PathBuf>,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            max_discs_per_package: default_max_discs(),
            organization: default_organization(),
            max_burn_attempts: default_attempts(),
            keep_staging: false,
            source_roots: Vec::new(),
        }
    }
}

fn default_max_discs() -> u32 {
    20
}

fn default_organization() -> String {
    "公共资源交易中心".to_string()
}

fn default_attempts() -> u32 {
    3
}

/// Admission of backup jobs (`[jobs]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs that run at once; the others wait, ordered by effective priority. Default: the
    /// number of drives plus one (one job collects while the others burn).
    pub max_running: Option<u32>,
    /// A waiting job's priority rises by one per this many minutes, so a low-priority job is
    /// never starved by a stream of urgent ones.
    #[serde(default = "default_ageing_minutes")]
    pub ageing_minutes: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_running: None,
            ageing_minutes: default_ageing_minutes(),
        }
    }
}

fn default_ageing_minutes() -> u32 {
    30
}

/// Periodic re-reads of kept copies, DA/T 38 style (`[reinspect]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReinspectConfig {
    /// Days between re-reads of a copy. Default 730 (two years).
    #[serde(default = "default_cycle_days")]
    pub cycle_days: u32,
    /// Days between re-reads once a copy's error count grew. Default 365.
    #[serde(default = "default_tight_cycle_days")]
    pub tight_cycle_days: u32,
}

impl Default for ReinspectConfig {
    fn default() -> Self {
        ReinspectConfig {
            cycle_days: default_cycle_days(),
            tight_cycle_days: default_tight_cycle_days(),
        }
    }
}

fn default_cycle_days() -> u32 {
    730
}

fn default_tight_cycle_days() -> u32 {
    365
}

/// `[labels]`: how disc faces are laid out and what the QR code points at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsConfig {
    /// Address of this appliance's web UI as seen from the archive room; the QR code on each
    /// disc opens `<base_url>/#/projects/<number>`. Default `http://127.0.0.1:8080`.
    pub base_url: Option<String>,
    /// Template for good discs (a name from `hardware/labels/` or `template_dir`). Default `standard`.
    pub template: Option<String>,
    /// Template printed on rejected discs. Default `reject`.
    pub reject_template: Option<String>,
    /// A folder of extra `NAME.toml` templates, searched before the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// A TrueType font (.ttf or .ttc) with Chinese glyphs. Default WenQuanYi Zen Hei
    /// (`fonts-wqy-zenhei`).
    pub font: Option<PathBuf>,
}

/// Whether a printer is reached over IPP or is a folder receiving the rendered files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrinterKind {
    Ipp,
    Folder,
}

/// `[[printers]]`: a disc printer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterConfig {
    pub name: String,
    pub kind: PrinterKind,
    /// IPP printers: `ipp://host:631/printers/NAME` (a CUPS queue or the printer itself).
    pub uri: Option<String>,
    /// Folder printers: where the PDF and PNG of each face go.
    pub path: Option<PathBuf>,
}

/// Drive health (`[burning]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurningConfig {
    /// A drive whose discs fail this many times in a row (write or read-back) is taken out of
    /// service with an alert until an administrator returns it. Default 2.
    #[serde(default = "default_out_of_service_after")]
    pub out_of_service_after: u32,
}

impl Default for BurningConfig {
    fn default() -> Self {
        BurningConfig {
            out_of_service_after: default_out_of_service_after(),
        }
    }
}

fn default_out_of_service_after() -> u32 {
    2
}

/// Robot models (`[autoloader] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoloaderKind {
    /// The simulated robot (bins, counts and injectable failures), for tests and demonstrations.
    Fake,
    /// Rimage (Producer, Everest): needs the vendor SDK; not supported yet.
    Rimage,
    /// Primera (Bravo, PTBurn): needs the vendor SDK; not supported yet.
    Primera,
}

/// A disc publishing robot (`[autoloader]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoloaderConfig {
    pub kind: AutoloaderKind,
    /// Blank discs in each input bin when the fake robot is first started. Default [100].
    #[serde(default = "default_input_bins")]
    pub input_bins: Vec<u32>,
    /// Discs the output bin and the reject bin each hold. Default 100.
    #[serde(default = "default_bin_capacity")]
    pub bin_capacity: u32,
    /// Fake only, for tests: this arm move (1-based over the robot's life) jams the arm.
    pub fault_jam_on_move: Option<u64>,
    /// Fake only, for tests: this arm move drops its disc.
    pub fault_drop_on_move: Option<u64>,
}

fn default_input_bins() -> Vec<u32> {
    vec![100]
}

fn default_bin_capacity() -> u32 {
    100
}
