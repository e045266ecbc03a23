//! Loads the TOML configuration, fills in defaults and checks it before the daemon starts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use witness_drivers::autoloader::{Autoloader, FakeAutoloader, FakeFaults};
use witness_drivers::burner::{discover_optical, Burner, Target, WriteFault, XorrisoBurner};
use witness_schemas::config::{AutoloaderKind, Config, DriveKind};
use witness_schemas::media;

use crate::bail;
use crate::error::{io_error, Result};

/// A hard-disk copy target, resolved.
#[derive(Debug, Clone)]
pub struct DiskTarget {
    pub name: String,
    pub path: PathBuf,
}

/// The configuration with every default applied and every drive built.
pub struct Settings {
    pub config: Config,
    pub data_dir: PathBuf,
    pub listen: String,
    pub drives: Vec<Arc<dyn Burner>>,
    pub disks: Vec<DiskTarget>,
    /// The disc publishing robot, when one is configured.
    pub autoloader: Option<Arc<dyn Autoloader>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field(
                "drives",
                &self
                    .drives
                    .iter()
                    .map(|d| d.info().name)
                    .collect::<Vec<_>>(),
            )
            .field("disks", &self.disks)
            .finish()
    }
}

/// Reads `path` (if given) and parses it; a missing file given explicitly is an error.
pub fn read_config(path: Option<&Path>) -> Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| io_error(format!("读取配置文件 {}", path.display()), e))?;
    parse_config(&text).map_err(|e| e.context(format!("配置文件 {}", path.display())))
}

pub fn parse_config(text: &str) -> Result<Config> {
    toml::from_str(text).map_err(|e| crate::err!(InvalidArgument, "{}", e.to_string().trim()))
}

/// Applies defaults and command-line overrides, builds the drives and checks everything.
pub fn resolve(
    config: Config,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
) -> Result<Settings> {
    let data_dir = data_dir
        .or_else(|| config.server.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("var"));
    // Absolute from here on: paths under the data folder are stored in the catalog and handed
    // to xorriso, and must not depend on the directory the daemon was started from.
    let data_dir = std::path::absolute(&data_dir)
        .map_err(|e| crate::err!(InvalidArgument, "数据目录 {} 无效：{e}", data_dir.display()))?;
    let listen = listen
        .or_else(|| config.server.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());

    let mut names = HashSet::new();
    let mut drives: Vec<Arc<dyn Burner>> = Vec::new();
    for drive in &config.drives {
        if !names.insert(drive.name.clone()) {
            bail!(InvalidArgument, "drive name {:?} is used twice", drive.name);
        }
        let Some(medium) = media::medium(&drive.media) else {
            bail!(
                InvalidArgument,
                "drive {}: unknown media {:?}; known: {}",
                drive.name,
                drive.media,
                media::codes()
            );
        };
        let target = match drive.kind {
            DriveKind::Optical => {
                if drive.capacity_bytes.is_some()
                    || drive.throttle_bytes_per_sec.is_some()
                    || drive.fault_fail_burns.is_some()
                    || drive.fault_fail_after_bytes.is_some()
                {
                    bail!(
                        InvalidArgument,
                        "drive {}: capacity_bytes, throttle_bytes_per_sec and fault_* are for virtual drives only",
                        drive.name
                    );
                }
                let Some(device) = drive.device.clone() else {
                    bail!(
                        InvalidArgument,
                        "drive {}: an optical drive needs device = \"/dev/srN\"",
                        drive.name
                    );
                };
                Target::Optical { device }
            }
            DriveKind::Virtual => Target::Virtual {
                image_dir: drive
                    .image_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("drives").join(&drive.name)),
                capacity_bytes: drive.capacity_bytes.unwrap_or(medium.capacity_bytes()),
                throttle_bytes_per_sec: drive.throttle_bytes_per_sec,
                fault: drive.fault_fail_burns.map(|count| {
                    WriteFault::new(drive.fault_fail_after_bytes.unwrap_or(1024 * 1024), count)
                }),
            },
        };
        let capacity_bytes = match &target {
            Target::Virtual { capacity_bytes, .. } => *capacity_bytes,
            Target::Optical { .. } => medium.capacity_bytes(),
        };
        if capacity_bytes < 4 * 1024 * 1024 {
            bail!(
                InvalidArgument,
                "drive {}: capacity_bytes {} is too small (at least 4 MiB)",
                drive.name,
                capacity_bytes
            );
        }
        drives.push(Arc::new(XorrisoBurner {
            name: drive.name.clone(),
            medium: medium.code.to_string(),
            capacity_bytes,
            target,
        }));
    }
    if config.drives.is_empty() {
        drives = default_drives(&data_dir);
    }

    let mut disks = Vec::new();
    for disk in &config.disks {
        if !names.insert(disk.name.clone()) {
            bail!(
                InvalidArgument,
                "disk name {:?} is used twice (names of drives and disks must be unique)",
                disk.name
            );
        }
        disks.push(DiskTarget {
            name: disk.name.clone(),
            path: disk.path.clone(),
        });
    }
    if config.disks.is_empty() && config.copies.disk > 0 {
        // With nothing configured, the disk copy lands inside the data folder so a first run
        // works; README says to point it at a separate disk for a real heterogeneous backup.
        disks.push(DiskTarget {
            name: "hdd1".into(),
            path: data_dir.join("disk-copies"),
        });
    }
    if config.copies.optical == 0 && config.copies.disk == 0 {
        bail!(
            InvalidArgument,
            "[copies] asks for no copy at all; at least one is needed"
        );
    }
    if config.archive.max_burn_attempts == 0 {
        bail!(
            InvalidArgument,
            "[archive] max_burn_attempts must be at least 1"
        );
    }
    if config.burning.out_of_service_after == 0 {
        bail!(
            InvalidArgument,
            "[burning] out_of_service_after 至少为 1 (must be at least 1)"
        );
    }
    let autoloader = build_autoloader(&config, &data_dir)?;
    // Label templates and printers are checked now, so a typo fails at start, not mid-burn.
    crate::labels::check_config(&config, &data_dir)?;
    Ok(Settings {
        config,
        data_dir,
        listen,
        drives,
        disks,
        autoloader,
    })
}

/// The configured robot: the fake (its bins kept in `<data>/autoloader/fake-state.json`, as a
/// real robot keeps them through a controller restart); vendor robots are refused for now.
fn build_autoloader(config: &Config, data_dir: &Path) -> Result<Option<Arc<dyn Autoloader>>> {
    let Some(robot) = &config.autoloader else {
        return Ok(None);
    };
    let model = match robot.kind {
        AutoloaderKind::Fake => None,
        AutoloaderKind::Rimage => Some("Rimage"),
        AutoloaderKind::Primera => Some("Primera"),
    };
    if let Some(model) = model {
        bail!(
            FailedPrecondition,
            "[autoloader] {}",
            witness_drivers::autoloader::unsupported(model)
        );
    }
    if robot.input_bins.is_empty() || robot.bin_capacity == 0 {
        bail!(
            InvalidArgument,
            "[autoloader] 至少需要一个输入仓，且 bin_capacity 至少为 1 (input_bins must not be empty, bin_capacity at least 1)"
        );
    }
    let fake = FakeAutoloader::new(
        robot.input_bins.clone(),
        robot.bin_capacity,
        FakeFaults {
            jam_on_move: robot.fault_jam_on_move,
            drop_on_move: robot.fault_drop_on_move,
        },
        Some(data_dir.join("autoloader").join("fake-state.json")),
    )
    .map_err(|e| crate::err!(FailedPrecondition, "[autoloader] {e}"))?;
    Ok(Some(Arc::new(fake)))
}

/// With no `[[drives]]`: every optical drive found (assumed BD-R), or else one virtual BD-R drive.
fn default_drives(data_dir: &Path) -> Vec<Arc<dyn Burner>> {
    let bd_r = media::medium("bd-r").expect("bd-r is a known medium");
    let found = discover_optical();
    if !found.is_empty() {
        return found
            .into_iter()
            .enumerate()
            .map(|(i, device)| {
                Arc::new(XorrisoBurner {
                    name: format!("sr{i}"),
                    medium: bd_r.code.into(),
                    capacity_bytes: bd_r.capacity_bytes(),
                    target: Target::Optical { device },
                }) as Arc<dyn Burner>
            })
            .collect();
    }
    vec![Arc::new(XorrisoBurner {
        name: "virtual1".into(),
        medium: bd_r.code.into(),
        capacity_bytes: bd_r.capacity_bytes(),
        target: Target::Virtual {
            image_dir: data_dir.join("drives").join("virtual1"),
            capacity_bytes: bd_r.capacity_bytes(),
            throttle_bytes_per_sec: None,
            fault: None,
        },
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_parses() {
        let config = parse_config(
            r#"
            [[drives]]
            name = "bd1"
            kind = "virtual"
            media = "bd-r"
            capacity_bytes = 52428800
            [[disks]]
            name = "hdd1"
            path = "/srv/witness-disk"
            [copies]
            optical = 1
            disk = 1
            "#,
        )
        .unwrap();
        let settings = resolve(config, Some("/tmp/w".into()), None).unwrap();
        assert_eq!(settings.drives.len(), 1);
        let relative = resolve(Config::default(), None, None).unwrap();
        assert!(relative.data_dir.is_absolute() && relative.data_dir.ends_with("var"));
        assert_eq!(settings.drives[0].info().capacity_bytes, 52_428_800);
        assert_eq!(settings.listen, "127.0.0.1:8080");
    }

    #[test]
    fn bad_configs_are_named() {
        let unknown =
            parse_config("[[drives]]\nname=\"a\"\nkind=\"virtual\"\nmedia=\"floppy\"\n").unwrap();
        let err = resolve(unknown, None, None).unwrap_err();
        assert!(err.message.contains("unknown media \"floppy\""), "{err}");
        let typo = parse_config("[copies]\noptcal = 1\n").unwrap_err();
        assert!(typo.message.contains("optcal"), "{typo}");
        let optical =
            parse_config("[[drives]]\nname=\"a\"\nkind=\"optical\"\nmedia=\"bd-r\"\n").unwrap();
        assert!(resolve(optical, None, None)
            .unwrap_err()
            .message
            .contains("needs device"));
    }
}
