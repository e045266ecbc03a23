//! Finds ID card readers on USB by the VID/PID of the profiles in `hardware/readers/*.toml`.
//!
//! Most readers sold to trading centers put a USB-serial bridge in front of the SAM module; the
//! kernel exposes them as `ttyUSB*`/`ttyACM*`, so discovery walks sysfs instead of linking a USB
//! stack (rusb and libusb are not in our build). Readers that speak their own USB-HID protocol
//! are recognised but answer "not supported yet".

use std::path::{Path, PathBuf};

use witness_schemas::gate::ReaderProfile;

use super::IdCardError;

/// A reader found on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundReader {
    pub profile: ReaderProfile,
    /// The serial device to open, e.g. `/dev/ttyUSB0`.
    pub device: PathBuf,
}

/// Reads every `*.toml` profile in `dir`, sorted by file name.
pub fn load_profiles(dir: &Path) -> Result<Vec<ReaderProfile>, IdCardError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)?;
            toml::from_str(&text).map_err(|e| {
                IdCardError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                ))
            })
        })
        .collect()
}

fn read_id(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
}

/// The tty names under a USB device's interfaces (`1-1:1.0/ttyUSB0` or `1-1:1.0/tty/ttyACM0`).
fn ttys_of(device_dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(interfaces) = std::fs::read_dir(device_dir) else {
        return names;
    };
    for interface in interfaces.flatten() {
        let path = interface.path();
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("ttyUSB") || name.starts_with("ttyACM") {
                names.push(name);
            } else if name == "tty" {
                if let Ok(inner) = std::fs::read_dir(entry.path()) {
                    names.extend(
                        inner
                            .flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned()),
                    );
                }
            }
        }
    }
    names.sort();
    names
}

/// Finds readers matching `profiles` under `sysfs_usb` (normally `/sys/bus/usb/devices`), with
/// their device nodes under `dev` (normally `/dev`).
pub fn discover(
    profiles: &[ReaderProfile],
    sysfs_usb: &Path,
    dev: &Path,
) -> Result<Vec<FoundReader>, IdCardError> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(sysfs_usb)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for device_dir in entries {
        let (Some(vid), Some(pid)) = (
            read_id(&device_dir, "idVendor"),
            read_id(&device_dir, "idProduct"),
        ) else {
            continue;
        };
        let Some(profile) = profiles.iter().find(|p| {
            p.usb_vid.to_ascii_lowercase() == vid && p.usb_pid.to_ascii_lowercase() == pid
        }) else {
            continue;
        };
        if profile.transport != "serial" {
            return Err(IdCardError::NotSupported(format!(
                "reader {} ({vid}:{pid}) over USB transport {:?}",
                profile.model, profile.transport
            )));
        }
        for tty in ttys_of(&device_dir) {
            found.push(FoundReader {
                profile: profile.clone(),
                device: dev.join(tty),
            });
        }
    }
    Ok(found)
}
