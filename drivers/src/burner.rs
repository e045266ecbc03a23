//! Burners: the `Burner` trait and its xorriso implementation, for real optical drives and for
//! virtual drives that write `stdio:` image files through the very same libburn code path.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the controller needs to know about a drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveInfo {
    pub name: String,
    /// `optical` or `virtual`.
    pub kind: &'static str,
    /// Medium code from [`witness_schemas::media`].
    pub medium: String,
    /// Bytes a blank disc holds.
    pub capacity_bytes: u64,
    /// `/dev/sr0`, or the folder of a virtual drive's images.
    pub device: PathBuf,
}

/// A byte range of a disk file written as its own file on the disc (a part of a split file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub source: PathBuf,
    pub offset: u64,
    pub length: u64,
    /// Path on the disc, `/`-separated, without a leading slash.
    pub disc_path: String,
}

/// One disc to write: a folder that becomes the disc's root, plus byte ranges of other files.
#[derive(Debug, Clone)]
pub struct BurnRequest {
    /// ISO 9660 volume id: up to 32 characters of `A-Z0-9_`.
    pub volume_id: String,
    /// A unique name for this disc (attempt); virtual drives name the image file after it.
    pub disc_name: String,
    pub root: PathBuf,
    pub cuts: Vec<Cut>,
}

/// A written disc: where to read it back from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurnedDisc {
    /// The image file of a virtual drive or the device of an optical drive.
    pub location: PathBuf,
}

/// Progress of a running burn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnProgress {
    /// 0.0 to 1.0, as xorriso reports it.
    pub fraction: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BurnError {
    #[error("drive {drive} is not available: {reason}")]
    DriveUnavailable { drive: String, reason: String },
    #[error("the medium in drive {drive} is full: {detail}")]
    MediumFull { drive: String, detail: String },
    #[error("writing on drive {drive} failed: {detail}")]
    WriteFailed { drive: String, detail: String },
    /// The image cannot be produced at all (found before anything was written); another disc
    /// would fail the same way.
    #[error("xorriso cannot build this disc's file system (nothing was written to drive {drive}): {detail}")]
    Unburnable { drive: String, detail: String },
    #[error("media check of drive {drive} found unreadable blocks: {detail}")]
    MediaCheckFailed { drive: String, detail: String },
    #[error("cannot run xorriso: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A reader over a written disc.
pub trait DiscRead: Read + Seek + Send {}
impl<T: Read + Seek + Send> DiscRead for T {}

/// A drive that writes discs. Calls block; the controller runs them on blocking threads.
pub trait Burner: Send + Sync {
    fn info(&self) -> DriveInfo;
    /// Writes `request` onto a fresh disc, reporting progress as it goes.
    fn burn(
        &self,
        request: &BurnRequest,
        progress: &mut dyn FnMut(BurnProgress),
    ) -> Result<BurnedDisc, BurnError>;
    /// Opens a written disc for read-back.
    fn open_disc(&self, disc: &BurnedDisc) -> Result<Box<dyn DiscRead>, BurnError>;
    /// Runs the drive's own media check (xorriso `-check_media`) on optical discs; virtual
    /// drives have no media to degrade, so their check is the read-back alone.
    fn media_check(&self, disc: &BurnedDisc) -> Result<(), BurnError>;
    /// Throws away a disc that failed (a virtual drive deletes its image; a real disc goes to the
    /// reject pile by hand or by the autoloader).
    fn discard(&self, disc: &BurnedDisc);
}

/// Where an [`XorrisoBurner`] writes.
#[derive(Debug, Clone)]
pub enum Target {
    Optical {
        device: PathBuf,
    },
    Virtual {
        image_dir: PathBuf,
        /// Writes beyond this many bytes fail, as on a full disc.
        capacity_bytes: u64,
        throttle_bytes_per_sec: Option<u64>,
        /// Fault injection for tests and demos: the next `count` burns fail once they have
        /// written `after_bytes`, the way a bad disc fails mid-burn.
        fault: Option<WriteFault>,
    },
}

/// A virtual drive's injected write failures (see [`Target::Virtual`]).
#[derive(Debug, Clone)]
pub struct WriteFault {
    pub after_bytes: u64,
    pub remaining: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl WriteFault {
    pub fn new(after_bytes: u64, count: u32) -> WriteFault {
        WriteFault {
            after_bytes,
            remaining: std::sync::Arc::new(std::sync::atomic::AtomicU32::new(count)),
        }
    }

    /// Whether this burn is one of the failing ones (and counts it).
    fn take(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A burner driven by one `xorriso` process per disc.
#[derive(Debug, Clone)]
pub struct XorrisoBurner {
    pub name: String,
    pub medium: String,
    pub capacity_bytes: u64,
    pub target: Target,
}

impl XorrisoBurner {
    fn unavailable(&self, reason: impl Into<String>) -> BurnError {
        BurnError::DriveUnavailable {
            drive: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Checks that the drive can take a disc now, before anything is written.
    fn check_ready(&self) -> Result<(), BurnError> {
        match &self.target {
            Target::Optical { device } => {
                if !device.exists() {
                    return Err(self.unavailable(format!("{} does not exist", device.display())));
                }
            }
            Target::Virtual { image_dir, .. } => {
                let meta = std::fs::metadata(image_dir).map_err(|e| {
                    self.unavailable(format!("image folder {}: {e}", image_dir.display()))
                })?;
                if !meta.is_dir() {
                    return Err(self.unavailable(format!(
                        "image folder {} is not a folder",
                        image_dir.display()
                    )));
                }
            }
        }
        Ok(())
    }

    fn outdev(&self, request: &BurnRequest) -> Result<(String, PathBuf), BurnError> {
        match &self.target {
            Target::Optical { device } => Ok((device.display().to_string(), device.clone())),
            Target::Virtual { image_dir, .. } => {
                let image = image_dir.join(format!("{}.iso", request.disc_name));
                // libburn treats an existing stdio file as an appendable medium and would add a
                // session to it; a fresh disc must start from nothing.
                match std::fs::remove_file(&image) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(BurnError::Io {
                            context: format!("removing stale image {}", image.display()),
                            source: e,
                        })
                    }
                }
                Ok((format!("stdio:{}", image.display()), image))
            }
        }
    }

    /// Builds the disc's directory tree from empty files and writes it to `stdio:/dev/null`
    /// first. libisofs 1.5.4 (Debian 12) aborts with "Calculated/written tree end address
    /// mismatch" on some directories holding many long Rock Ridge names (about 150 bytes and
    /// up, i.e. 50-character Chinese names); the tree alone reproduces it, so this costs
    /// milliseconds and saves a write-once disc from being ruined.
    fn preflight(&self, request: &BurnRequest) -> Result<(), BurnError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mirror =
            std::env::temp_dir().join(format!("witness-preflight-{}-{n}", std::process::id()));
        let io = |context: String| move |source| BurnError::Io { context, source };
        let result = (|| {
            mirror_tree(&request.root, &mirror)
                .map_err(io(format!("mirroring {}", request.root.display())))?;
            for cut in &request.cuts {
                let path = mirror.join(&cut.disc_path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(io(format!("creating {}", parent.display())))?;
                }
                File::create(&path).map_err(io(format!("creating {}", path.display())))?;
            }
            let dry = BurnRequest {
                root: mirror.clone(),
                cuts: Vec::new(),
                ..request.clone()
            };
            let output = Command::new("xorriso")
                .args(self.burn_args(&dry, "stdio:/dev/null", true))
                .env("LC_ALL", "C.UTF-8")
                .stdin(Stdio::null())
                .output()
                .map_err(BurnError::Spawn)?;
            let problems: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| match parse_packet_line(line) {
                    PacketLine::Problem(p) => Some(p),
                    _ => None,
                })
                .collect();
            if !output.status.success() || !problems.is_empty() {
                return Err(BurnError::Unburnable {
                    drive: self.name.clone(),
                    detail: if problems.is_empty() {
                        format!("xorriso exited with {}", output.status)
                    } else {
                        problems.join("; ")
                    },
                });
            }
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&mirror);
        result
    }

    fn burn_args(&self, request: &BurnRequest, outdev: &str, dry_run: bool) -> Vec<String> {
        let mut args: Vec<String> = [
            "-abort_on",
            "FAILURE",
            "-return_with",
            "SORRY",
            "32",
            "-pkt_output",
            "on",
            // Names on disk are UTF-8 whatever the caller's locale; Rock Ridge keeps them as
            // UTF-8 bytes and Joliet gets proper UCS-2 for Windows readers.
            "-local_charset",
            "UTF-8",
            "-charset",
            "UTF-8",
            "-outdev",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(outdev.to_string());
        match &self.target {
            _ if dry_run => {}
            Target::Virtual {
                throttle_bytes_per_sec: Some(rate),
                ..
            } => {
                // libburn paces stdio: pseudo-drives to the requested speed, which is how a virtual
                // drive imitates a real one. Its unit "k" is 1000 bytes per second.
                args.extend(["-speed".to_string(), format!("{}k", (rate / 1000).max(1))]);
            }
            Target::Optical { .. } => {
                // Close the disc: archive media must not be left appendable.
                args.extend(["-close".to_string(), "on".to_string()]);
            }
            Target::Virtual { .. } => {}
        }
        args.extend(
            [
                "-joliet",
                "on",
                "-rockridge",
                "on",
                // Level 3 lets files over 4 GiB be written as several extents.
                "-compliance",
                "iso_9660_level=3:joliet_long_names",
                "-volid",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.push(request.volume_id.clone());
        args.push("-map".into());
        args.push(request.root.display().to_string());
        args.push("/".into());
        for cut in &request.cuts {
            args.push("-cut_out".into());
            args.push(cut.source.display().to_string());
            args.push(cut.offset.to_string());
            args.push(cut.length.to_string());
            args.push(format!("/{}", cut.disc_path));
        }
        args.push("-commit".into());
        args.push("-end".into());
        args
    }
}

/// Reads xorriso's `-pkt_output` lines: progress from UPDATE lines, the problem from the
/// FAILURE/SORRY lines (the last one is usually the most specific).
fn parse_packet_line(line: &str) -> PacketLine {
    // "I:1: xorriso : UPDATE : Writing:       8192s   55.2%   fifo 100%  buf  50%"
    let text = line.get(5..).unwrap_or(line);
    if text.contains(": UPDATE :") && text.contains("Writing:") {
        if let Some(percent) = text
            .split_whitespace()
            .find_map(|word| word.strip_suffix('%').and_then(|n| n.parse::<f64>().ok()))
        {
            return PacketLine::Progress(percent / 100.0);
        }
    }
    for level in [": FATAL :", ": FAILURE :", ": SORRY :"] {
        if let Some(at) = text.find(level) {
            return PacketLine::Problem(text[at + level.len()..].trim().to_string());
        }
    }
    PacketLine::Other
}

enum PacketLine {
    Progress(f64),
    Problem(String),
    Other,
}

fn looks_full(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("file too large")
        || lower.contains("exceeds free space")
        || lower.contains("no space left")
        || lower.contains("not enough space")
}

impl Burner for XorrisoBurner {
    fn info(&self) -> DriveInfo {
        let (kind, device) = match &self.target {
            Target::Optical { device } => ("optical", device.clone()),
            Target::Virtual { image_dir, .. } => ("virtual", image_dir.clone()),
        };
        DriveInfo {
            name: self.name.clone(),
            kind,
            medium: self.medium.clone(),
            capacity_bytes: self.capacity_bytes,
            device,
        }
    }

    fn burn(
        &self,
        request: &BurnRequest,
        progress: &mut dyn FnMut(BurnProgress),
    ) -> Result<BurnedDisc, BurnError> {
        self.check_ready()?;
        self.preflight(request)?;
        let (outdev, location) = self.outdev(request)?;
        let mut command = Command::new("xorriso");
        command
            .args(self.burn_args(request, &outdev, false))
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // An injected fault stands for a bad disc, so the write error it causes must not be
        // taken for a full medium (the file-size limit raises the same EFBIG for both).
        let mut injected_fault = None;
        if let Target::Virtual {
            capacity_bytes,
            fault,
            ..
        } = &self.target
        {
            let limit = match fault {
                Some(fault) if fault.take() => {
                    injected_fault = Some(fault.after_bytes).filter(|after| after < capacity_bytes);
                    fault.after_bytes.min(*capacity_bytes)
                }
                _ => *capacity_bytes,
            };
            limit_file_size(&mut command, limit);
        }
        stop_with_caller(&mut command);
        let mut child = command.spawn().map_err(BurnError::Spawn)?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        // stderr is drained on its own thread so a chatty xorriso never blocks on a full pipe.
        let stderr_thread = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let mut problems: Vec<String> = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match parse_packet_line(&line) {
                PacketLine::Progress(fraction) => progress(BurnProgress { fraction }),
                PacketLine::Problem(problem) => problems.push(problem),
                PacketLine::Other => {}
            }
        }
        let status = child.wait().map_err(|e| BurnError::Io {
            context: "waiting for xorriso".into(),
            source: e,
        })?;
        let stderr_text = stderr_thread.join().unwrap_or_default();
        if status.success() && problems.is_empty() {
            progress(BurnProgress { fraction: 1.0 });
            return Ok(BurnedDisc { location });
        }
        let mut detail = problems.join("; ");
        if detail.is_empty() {
            detail = stderr_text.lines().last().unwrap_or("").trim().to_string();
        }
        if detail.is_empty() {
            detail = format!("xorriso exited with {status}");
        }
        if let Some(after) = injected_fault {
            Err(BurnError::WriteFailed {
                drive: self.name.clone(),
                detail: format!("{detail} (injected fault: this disc fails after {after} bytes)"),
            })
        } else if looks_full(&detail) {
            Err(BurnError::MediumFull {
                drive: self.name.clone(),
                detail,
            })
        } else {
            Err(BurnError::WriteFailed {
                drive: self.name.clone(),
                detail,
            })
        }
    }

    fn open_disc(&self, disc: &BurnedDisc) -> Result<Box<dyn DiscRead>, BurnError> {
        let file = File::open(&disc.location).map_err(|e| BurnError::Io {
            context: format!("opening {} for read-back", disc.location.display()),
            source: e,
        })?;
        Ok(Box::new(file))
    }

    fn media_check(&self, disc: &BurnedDisc) -> Result<(), BurnError> {
        let Target::Optical { .. } = &self.target else {
            return Ok(());
        };
        let output = Command::new("xorriso")
            .args(["-abort_on", "FAILURE", "-pkt_output", "on", "-indev"])
            .arg(&disc.location)
            .args(["-check_media", "what=disc", "--", "-end"])
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .map_err(BurnError::Spawn)?;
        let text = String::from_utf8_lossy(&output.stdout);
        // "Media region :      0 ,   14848 , + good" — anything but good/valid is a bad region.
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Media region :"))
            .filter(|l| !(l.contains("good") || l.contains("valid")))
            .collect();
        if !output.status.success() || !bad.is_empty() {
            return Err(BurnError::MediaCheckFailed {
                drive: self.name.clone(),
                detail: if bad.is_empty() {
                    format!("xorriso exited with {}", output.status)
                } else {
                    bad.join("; ")
                },
            });
        }
        Ok(())
    }

    fn discard(&self, disc: &BurnedDisc) {
        if let Target::Virtual { .. } = &self.target {
            let _ = std::fs::remove_file(&disc.location);
        }
    }
}

/// Sends xorriso SIGTERM when the thread that started it (and waits for it) dies, e.g. when the
/// daemon is killed or crashes mid-burn. Otherwise the orphan keeps burning a disc the restart
/// rejects, keeps the drive busy, and on a virtual drive re-creates the image the restart removed
/// (libburn rewrites the volume descriptors at LBA 0 when the write ends). On SIGTERM xorriso
/// cancels the write and releases the drive cleanly.
fn stop_with_caller(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe, which is all pre_exec requires.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The daemon may have died between fork and prctl.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("the daemon exited"));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Makes writes past `bytes` fail with EFBIG in the child, the way a full disc fails a burn, so a
/// virtual drive's capacity is enforced by the kernel rather than by our own bookkeeping.
fn limit_file_size(command: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and signal are async-signal-safe, which is all pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Ignored SIGXFSZ turns "killed by a signal" into an ordinary write error that
            // xorriso reports; the disposition survives exec.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// Recreates the folders and file names under `from` in `to`, every file empty.
fn mirror_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            mirror_tree(&entry.path(), &target)?;
        } else {
            File::create(&target)?;
        }
    }
    Ok(())
}

/// Optical drives present on this machine (`/dev/sr*`), found through sysfs.
pub fn discover_optical() -> Vec<PathBuf> {
    discover_in(Path::new("/sys/class/block"), Path::new("/dev"))
}

fn discover_in(sys_block: &Path, dev: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| name.starts_with("sr") && name[2..].chars().all(|c| c.is_ascii_digit()))
        .map(|name| dev.join(name))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_and_problems_are_read_from_packet_lines() {
        match parse_packet_line("I:1: xorriso : UPDATE : Writing:       8192s   55.2%   fifo 100%")
        {
            PacketLine::Progress(f) => assert!((f - 0.552).abs() < 1e-9),
            _ => panic!("expected progress"),
        }
        match parse_packet_line("I:1: libburn : FAILURE : Write error: File too large") {
            PacketLine::Problem(p) => {
                assert_eq!(p, "Write error: File too large");
                assert!(looks_full(&p));
            }
            _ => panic!("expected a problem"),
        }
        assert!(matches!(
            parse_packet_line("I:1: Drive current: -outdev 'stdio:/x'"),
            PacketLine::Other
        ));
    }

    fn virtual_burner(dir: &Path) -> XorrisoBurner {
        XorrisoBurner {
            name: "v1".into(),
            medium: "bd-r".into(),
            capacity_bytes: 64 << 20,
            target: Target::Virtual {
                image_dir: dir.join("images"),
                capacity_bytes: 64 << 20,
                throttle_bytes_per_sec: None,
                fault: None,
            },
        }
    }

    #[test]
    fn a_tree_libisofs_cannot_write_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        let root = dir.path().join("root/data");
        std::fs::create_dir_all(&root).unwrap();
        // 100 names of 220 bytes in one folder: libisofs 1.5.4 loses track of its CE areas.
        for i in 0..100 {
            std::fs::write(root.join(format!("{i:05}-{}", "n".repeat(214))), b"x").unwrap();
        }
        let burner = virtual_burner(dir.path());
        let request = BurnRequest {
            volume_id: "T_1_1".into(),
            disc_name: "t".into(),
            root: dir.path().join("root"),
            cuts: Vec::new(),
        };
        let err = burner.burn(&request, &mut |_| {}).unwrap_err();
        assert!(matches!(err, BurnError::Unburnable { .. }), "{err}");
        assert!(
            err.to_string().contains("tree end address mismatch"),
            "{err}"
        );
        assert!(
            !dir.path().join("images/t.iso").exists(),
            "nothing may be written"
        );
    }

    #[test]
    fn an_ordinary_tree_burns_and_a_missing_image_dir_is_a_gone_drive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("data/投标文件")).unwrap();
        std::fs::write(root.join("data/投标文件/第1册 商务标.txt"), b"hello").unwrap();
        let burner = virtual_burner(dir.path());
        let request = BurnRequest {
            volume_id: "T_1_1".into(),
            disc_name: "t".into(),
            root,
            cuts: Vec::new(),
        };
        let err = burner.burn(&request, &mut |_| {}).unwrap_err();
        assert!(matches!(err, BurnError::DriveUnavailable { .. }), "{err}");
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        let mut last = 0.0;
        let disc = burner.burn(&request, &mut |p| last = p.fraction).unwrap();
        assert_eq!(last, 1.0);
        let mut image = burner.open_disc(&disc).unwrap();
        let (_, files) = crate::iso9660::read_tree(&mut image).unwrap();
        assert_eq!(files[0].path, "data/投标文件/第1册 商务标.txt");
    }

    #[test]
    fn discovery_lists_only_sr_devices() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["sr0", "sr1", "sda", "srx"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let found = discover_in(dir.path(), Path::new("/dev"));
        assert_eq!(
            found,
            vec![PathBuf::from("/dev/sr0"), PathBuf::from("/dev/sr1")]
        );
    }
}
