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
