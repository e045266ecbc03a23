//! Reads ISO 9660 file systems (with Rock Ridge names) straight from an image or a disc.
//!
//! Used to verify a burned disc: [`read_tree`] lists every regular file of the volume and
//! [`file_reader`] streams one file's content so that it can be hashed and compared to the
//! manifest of the archive package. The reader is written for what xorriso 1.5.4 produces
//! (ISO level 3, Rock Ridge, Joliet alongside) but follows ECMA-119 and SUSP/RRIP generally.
//!
//! It works on any `Read + Seek`: an image file, a `Cursor`, or the block device of the drive
//! (`/dev/sr0`), where every read is a seek plus a large sequential read.
//!
//! Not supported (reported as errors or documented limits): interleaved files, logical block
//! sizes other than 2048, multi-volume sets, later sessions of a multi-session CD/DVD-R (the
//! volume descriptors read are the ones at LBA 16), and Joliet names (Rock Ridge or plain
//! ISO 9660 names are used).

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes per logical sector; the only logical block size this reader accepts.
pub const SECTOR_SIZE: u64 = 2048;

/// The volume descriptor set starts after the 32 KiB system area.
const FIRST_DESCRIPTOR_LBA: u64 = 16;
/// A real set has a handful of descriptors; the bound stops a scan over garbage.
const MAX_DESCRIPTORS: u64 = 64;
/// Records are at most 255 bytes, so 256 MiB is roughly a million entries in one directory:
/// far beyond any archive, small enough that a corrupt length cannot make us allocate 4 GiB.
const MAX_DIR_BYTES: u32 = 256 << 20;
/// The walk uses an explicit stack, so depth only bounds path length on a corrupt tree.
const MAX_DEPTH: usize = 1000;
/// Bounds on the SUSP continuation chain of one record; a real chain carries a 255-byte name
/// and perhaps some ACL/xattr data, a corrupt one could loop forever.
const MAX_CE_HOPS: usize = 256;
const MAX_SU_BYTES: u64 = 1 << 20;
/// Continuation areas of neighbouring records sit next to each other, so they are read in
/// chunks of this many sectors instead of one seek and read per record.
const CE_READAHEAD_SECTORS: u64 = 32;

const FLAG_ASSOCIATED: u8 = 0x04;
const FLAG_DIRECTORY: u8 = 0x02;
const FLAG_MULTI_EXTENT: u8 = 0x80;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

/// One regular file found on the medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    /// Path from the root, '/'-separated, no leading slash, with the Rock Ridge (NM) name when
    /// present, otherwise the ISO 9660 name with ";1" version and trailing "." stripped.
    /// Names that are not valid UTF-8 are converted lossily (U+FFFD), so they will not match a
    /// manifest and show up as a verification failure rather than an unreadable disc.
    pub path: String,
    /// Content length in bytes: the sum of the extent lengths.
    pub size: u64,
    /// Data extents in order; more than one for multi-extent files (> 4 GiB, ISO level 3).
    /// Empty for an empty file.
    pub extents: Vec<Extent>,
}

/// A contiguous run of file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First sector of the data.
    pub lba: u32,
    /// Length in bytes.
    pub len: u64,
}

/// What can go wrong reading a medium.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("I/O error while reading the medium: {0}")]
    Io(#[from] io::Error),
    #[error(
        "not an ISO 9660 file system: no primary volume descriptor (\"CD001\") from LBA 16 on"
    )]
    NotIso9660,
    #[error(
        "medium ends at byte {have} but the volume needs {need} bytes: image or disc is truncated"
    )]
    Truncated { have: u64, need: u64 },
    #[error("corrupt ISO 9660 file system: {0}")]
    Corrupt(String),
    #[error("unsupported ISO 9660 feature: {0}")]
    Unsupported(String),
}

/// Facts about the volume from its primary volume descriptor and the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Volume identifier from the PVD, trailing blanks removed.
    pub volume_id: String,
    /// Volume space size from the PVD, in 2048-byte sectors.
    pub volume_space_blocks: u32,
    /// Whether Rock Ridge (SUSP "SP" in the root) was found, i.e. whether paths are RR names.
    pub rock_ridge: bool,
    /// Paths of entries that are neither regular files nor directories (symlinks, devices,
    /// FIFOs, sockets by their Rock Ridge PX mode), sorted. They are not in the file list, and
    /// a verifier may want to report them.
    pub non_regular: Vec<String>,
}

/// Reads the primary volume descriptor and walks the whole directory tree; returns every
/// regular file (directories are not listed), sorted by path.
pub fn read_tree<R: Read + Seek>(dev: &mut R) -> Result<(VolumeInfo, Vec<IsoFile>), IsoError> {
    let pvd = read_primary_descriptor(dev)?;
    let pvd_at = |off| At {
        lba: FIRST_DESCRIPTOR_LBA,
        off,
    };
    if pvd[6] != 1 {
        return Err(corrupt(format!(
            "primary volume descriptor version is {} instead of 1 at {}",
            pvd[6],
            pvd_at(6)
        )));
    }
    let volume_id = String::from_utf8_lossy(&pvd[40..72])
        .trim_end_matches([' ', '\0'])
        .to_string();
    let volume_space_blocks = both32(&pvd[80..88], "volume space size", pvd_at(80))?;
    let block_size = both16(&pvd[128..132], "logical block size", pvd_at(128))?;
    if u64::from(block_size) != SECTOR_SIZE {
        return Err(IsoError::Unsupported(format!(
            "logical block size {block_size}"
        )));
    }
    let volume_bytes = u64::from(volume_space_blocks) * SECTOR_SIZE;
    // A truncated image would otherwise only show up when some later extent is read, as a
    // bare end-of-file error; this names the cause up front. Devices that cannot report
    // their end (seek fails) are read as they are.
    if let Ok(have) = dev.seek(SeekFrom::End(0)) {
        if have < volume_bytes {
            return Err(IsoError::Truncated {
                have,
                need: volume_bytes,
            });
        }
    }

    let root_at = pvd_at(156);
    if pvd[156] != 34 {
        return Err(corrupt(format!(
            "root directory record is {} bytes instead of 34 at {root_at}",
            pvd[156]
        )));
    }
    let root = parse_record(&pvd[156..190], root_at)?;
    if root.flags & FLAG_DIRECTORY == 0 {
        return Err(corrupt(format!(
            "root directory record is not a directory at {root_at}"
        )));
    }

    let mut walker = Walker {
        dev,
        volume_blocks: volume_space_blocks,
        susp_skip: None,
        visited: HashSet::new(),
        dir_bytes: 0,
        ce_bytes: 0,
        files: Vec::new(),
        non_regular: Vec::new(),
        ce_cache_start: 0,
        ce_cache: Vec::new(),
    };
    let mut stack = vec![DirJob {
        lba: root.lba,
        len: root.data_len,
        path: String::new(),
        depth: 0,
    }];
    while let Some(job) = stack.pop() {
        walker.walk_dir(job, &mut stack)?;
    }

    let rock_ridge = walker.susp_skip.is_some();
    let mut files = walker.files;
    let mut non_regular = walker.non_regular;
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    non_regular.sort_unstable();
    // Two records resolving to one path (possible only on a corrupt or hand-made volume) would
    // make a path-keyed comparison with the manifest silently check one of them.
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(corrupt(format!("two files have the path {:?}", w[0].path)));
    }
    let info = VolumeInfo {
        volume_id,
        volume_space_blocks,
        rock_ridge,
        non_regular,
    };
    Ok((info, files))
}

/// A reader over a file's content (concatenating its extents), borrowing the device.
pub fn file_reader<'a, R: Read + Seek>(dev: &'a mut R, file: &IsoFile) -> FileReader<'a, R> {
    FileReader {
        dev,
        extents: file.extents.clone(),
        index: 0,
        done_in_extent: 0,
        positioned: false,
    }
}

/// Streams one file's content; see [`file_reader`]. A medium that ends before the file does
/// gives an `UnexpectedEof` error rather than a short read, so a hash is never taken over
/// silently truncated data.
pub struct FileReader<'a, R> {
    dev: &'a mut R,
    extents: Vec<Extent>,
    index: usize,
    done_in_extent: u64,
    /// The device position is ours while we borrow it, so one seek per extent is enough.
    positioned: bool,
}

impl<R: Read + Seek> Read for FileReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(ext) = self.extents.get(self.index).copied() else {
                return Ok(0);
            };
            let left = ext.len - self.done_in_extent;
            if left == 0 {
                self.index += 1;
                self.done_in_extent = 0;
                self.positioned = false;
                continue;
            }
            if !self.positioned {
                let start = u64::from(ext.lba) * SECTOR_SIZE + self.done_in_extent;
                self.dev.seek(SeekFrom::Start(start))?;
                self.positioned = true;
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let n = loop {
                match self.dev.read(&mut buf[..want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "medium ends inside a file extent at LBA {} ({} of {} bytes read)",
                        ext.lba, self.done_in_extent, ext.len
                    ),
                ));
            }
            self.done_in_extent += n as u64;
            return Ok(n);
        }
    }
}

/// Where something was found, for error messages: a sector and a byte offset within it.
#[derive(Clone, Copy)]
struct At {
    lba: u64,
    off: usize,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LBA {} offset {}", self.lba, self.off)
    }
}

fn corrupt(msg: String) -> IsoError {
    IsoError::Corrupt(msg)
}

/// ECMA-119 stores many numbers twice, little- then big-endian. Requiring both copies to
/// agree is a cheap, effective test that we are looking at a real record and not garbage.
fn both32(b: &[u8], what: &str, at: At) -> Result<u32, IsoError> {
    let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let be = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if le != be {
        return Err(corrupt(format!(
            "{what} has different little-endian ({le}) and big-endian ({be}) copies at {at}"
        )));
    }
    Ok(le)
}

fn both16(b: &[u8], what: &str, at: At) -> Result<u16, IsoError> {
    let le = u16::from_le_bytes([b[0], b[1]]);
    let be = u16::from_be_bytes([b[2], b[3]]);
    if le != be {
        return Err(corrupt(format!(
            "{what} has different little-endian ({le}) and big-endian ({be}) copies at {at}"
        )));
    }
    Ok(le)
}

/// Seeks and fills `buf`; running out of medium is reported as truncation at that place
/// instead of a bare end-of-file error.
fn read_at<R: Read + Seek>(
    dev: &mut R,
    offset: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<(), IsoError> {
    dev.seek(SeekFrom::Start(offset))?;
    match dev.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(corrupt(format!(
            "medium ends while reading {what} at LBA {} ({} bytes wanted)",
            offset / SECTOR_SIZE,
            buf.len()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Reads as much of `buf` as the medium has; used for read-ahead that may run past its end.
fn read_some_at<R: Read + Seek>(dev: &mut R, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    dev.seek(SeekFrom::Start(offset))?;
    let mut filled = 0;
    while filled < buf.len() {
        match dev.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Finds the primary volume descriptor in the descriptor set that starts at LBA 16.
fn read_primary_descriptor<R: Read + Seek>(dev: &mut R) -> Result<Vec<u8>, IsoError> {
    let mut sector = vec![0u8; SECTOR_SIZE as usize];
    for lba in FIRST_DESCRIPTOR_LBA..FIRST_DESCRIPTOR_LBA + MAX_DESCRIPTORS {
        let got = read_some_at(dev, lba * SECTOR_SIZE, &mut sector)?;
        if got < sector.len() || &sector[1..6] != b"CD001" {
            return Err(IsoError::NotIso9660);
        }
        match sector[0] {
            1 => return Ok(sector),
            255 => return Err(IsoError::NotIso9660),
            _ => {}
        }
    }
    Err(IsoError::NotIso9660)
}

/// The fields of a directory record that the walk needs.
struct Record<'b> {
    /// First sector of the data, after any extended attribute record.
    lba: u32,
    data_len: u32,
    flags: u8,
    /// The raw ISO 9660 file identifier.
    name: &'b [u8],
    /// The system use area: everything after the identifier and its pad byte.
    system_use: &'b [u8],
}

/// Parses one directory record; `rec` is exactly the record (its length byte says how long).
fn parse_record(rec: &[u8], at: At) -> Result<Record<'_>, IsoError> {
    let name_len = usize::from(rec[32]);
    if 33 + name_len > rec.len() {
        return Err(corrupt(format!(
            "file identifier of {name_len} bytes runs past the {}-byte directory record at {at}",
            rec.len()
        )));
    }
    if name_len == 0 {
        return Err(corrupt(format!(
            "directory record with an empty file identifier at {at}"
        )));
    }
    let lba = both32(&rec[2..10], "extent location", at)?;
    let data_len = both32(&rec[10..18], "data length", at)?;
    if rec[26] != 0 || rec[27] != 0 {
        return Err(IsoError::Unsupported(format!("interleaved file at {at}")));
    }
    // The extended attribute record, if any, precedes the data in the extent.
    let lba = lba
        .checked_add(u32::from(rec[1]))
        .ok_or_else(|| corrupt(format!("extent location overflows at {at}")))?;
    // A pad byte follows an identifier of even length, so the system use area starts on an
    // even offset.
    let su_start = 33 + name_len + usize::from(name_len % 2 == 0);
    Ok(Record {
        lba,
        data_len,
        flags: rec[25],
        name: &rec[33..33 + name_len],
        system_use: rec.get(su_start..).unwrap_or(&[]),
    })
}

/// The ISO 9660 identifier as a name: ";1"-style version and the dot that xorriso forces onto
/// names without an extension removed.
fn iso_name(raw: &[u8]) -> String {
    let base = match raw.iter().position(|&b| b == b';') {
        Some(i) => &raw[..i],
        None => raw,
    };
    let base = base.strip_suffix(b".").unwrap_or(base);
    String::from_utf8_lossy(base).into_owned()
}

/// What the Rock Ridge entries of one record say.
#[derive(Default)]
struct RockRidge {
    name: Option<String>,
    /// RE: this directory was moved here from a deep place; it is reached through its CL.
    relocated: bool,
    /// CL: this placeholder file stands for the directory at this LBA.
    child_link: Option<u32>,
    /// PX: POSIX file mode.
    mode: Option<u32>,
}

struct DirJob {
    lba: u32,
    len: u32,
    path: String,
    depth: usize,
}

/// A file being assembled from one or more directory records (multi-extent files have one
/// record per extent, all with the same identifier, all but the last flagged 0x80).
struct PendingFile {
    iso_name: Vec<u8>,
    path: String,
    regular: bool,
    size: u64,
    extents: Vec<Extent>,
}

struct Walker<'d, R> {
    dev: &'d mut R,
    volume_blocks: u32,
    /// `Some(LEN_SKP)` once the root's "SP" entry shows that SUSP/Rock Ridge is in use.
    susp_skip: Option<usize>,
    /// Directory extents already read: a second visit means the tree has a loop.
    visited: HashSet<u32>,
    /// Directory extents of a sound volume are disjoint, so their total fits the volume;
    /// more means overlapping extents crafted to make the walk read without end.
    dir_bytes: u64,
    /// The same for continuation areas: each belongs to one record, so together they fit the
    /// volume. Bounds the work on a volume whose records all point at one long CE chain.
    ce_bytes: u64,
    files: Vec<IsoFile>,
    non_regular: Vec<String>,
    ce_cache_start: u64,
    ce_cache: Vec<u8>,
}

impl<R: Read + Seek> Walker<'_, R> {
    fn volume_bytes(&self) -> u64 {
        u64::from(self.volume_blocks) * SECTOR_SIZE
    }

    /// Whether `len` bytes from sector `lba` lie inside the volume.
    fn in_volume(&self, lba: u32, len: u64) -> bool {
        u64::from(lba) + len.div_ceil(SECTOR_SIZE) <= u64::from(self.volume_blocks)
    }

    /// Reads one directory extent in a single read and handles all its records; files go to
    /// `self.files`, subdirectories onto `stack`.
    fn walk_dir(&mut self, job: DirJob, stack: &mut Vec<DirJob>) -> Result<(), IsoError> {
        let shown = if job.path.is_empty() {
            "/"
        } else {
            job.path.as_str()
        };
        if job.len == 0 || job.len > MAX_DIR_BYTES {
            return Err(corrupt(format!(
                "directory {shown:?} at LBA {} has an absurd length of {} bytes",
                job.lba, job.len
            )));
        }
        if !self.in_volume(job.lba, u64::from(job.len)) {
            return Err(corrupt(format!(
                "directory {shown:?} at LBA {} ({} bytes) lies outside the volume of {} sectors",
                job.lba, job.len, self.volume_blocks
            )));
        }
        if !self.visited.insert(job.lba) {
            return Err(corrupt(format!(
                "directory {shown:?} points to LBA {}, which was already read: the tree has a loop",
                job.lba
            )));
        }
        self.dir_bytes += u64::from(job.len);
        if self.dir_bytes > self.volume_bytes() {
            return Err(corrupt(format!(
                "directories add up to more than the volume at directory {shown:?} (LBA {}): extents overlap",
                job.lba
            )));
        }

        let mut buf = vec![0u8; job.len as usize];
        read_at(
            self.dev,
            u64::from(job.lba) * SECTOR_SIZE,
            &mut buf,
            "a directory",
        )?;

        let sector = SECTOR_SIZE as usize;
        let mut pos = 0usize;
        let mut first = true;
        let mut pending: Option<PendingFile> = None;
        while pos < buf.len() {
            let sector_end = ((pos / sector + 1) * sector).min(buf.len());
            let rec_len = usize::from(buf[pos]);
            // Records never cross a sector boundary; a zero length byte is the padding up to
            // the next sector.
            if rec_len == 0 {
                pos = sector_end;
                continue;
            }
            let at = At {
                lba: u64::from(job.lba) + (pos / sector) as u64,
                off: pos % sector,
            };
            if rec_len < 34 {
                return Err(corrupt(format!(
                    "directory record of {rec_len} bytes (minimum 34) at {at} in {shown:?}"
                )));
            }
            if pos + rec_len > sector_end {
                return Err(corrupt(format!(
                    "directory record of {rec_len} bytes at {at} in {shown:?} runs past the end of its sector"
                )));
            }
            let rec = parse_record(&buf[pos..pos + rec_len], at)?;
            pos += rec_len;

            if first {
                // ECMA-119 6.8.2.2: the first record is "." and describes the directory itself.
                // Checking it catches a directory record that points at something else.
                first = false;
                if rec.name != [0] || rec.lba != job.lba {
                    return Err(corrupt(format!(
                        "directory {shown:?} at LBA {} does not start with its own \".\" record",
                        job.lba
                    )));
                }
                if job.depth == 0 {
                    self.susp_skip = find_sp(rec.system_use);
                }
                continue;
            }
            if rec.name == [0] || rec.name == [1] {
                continue;
            }

            if let Some(mut file) = pending.take() {
                if rec.name != file.iso_name.as_slice() || rec.flags & FLAG_DIRECTORY != 0 {
                    return Err(corrupt(format!(
                        "multi-extent file {:?} is followed by a different record at {at}",
                        file.path
                    )));
                }
                self.add_extent(&mut file, &rec, at)?;
                if rec.flags & FLAG_MULTI_EXTENT != 0 {
                    pending = Some(file);
                } else {
                    self.finish(file);
                }
                continue;
            }
            if rec.flags & FLAG_ASSOCIATED != 0 {
                continue;
            }

            let rr = match self.susp_skip {
                Some(skip) => self.parse_susp(rec.system_use, skip, at)?,
                None => RockRidge::default(),
            };
            if rr.relocated {
                continue;
            }
            let name = match rr.name {
                Some(name) => name,
                None => iso_name(rec.name),
            };
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return Err(corrupt(format!(
                    "invalid file name {name:?} at {at} in {shown:?}"
                )));
            }
            let path = if job.path.is_empty() {
                name
            } else {
                format!("{}/{name}", job.path)
            };

            let is_dir = rec.flags & FLAG_DIRECTORY != 0;
            if is_dir || rr.child_link.is_some() {
                if job.depth + 1 > MAX_DEPTH {
                    return Err(corrupt(format!(
                        "directory {path:?} is nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                if rec.flags & FLAG_MULTI_EXTENT != 0 {
                    return Err(corrupt(format!("multi-extent directory record at {at}")));
                }
                let (lba, len) = match rr.child_link {
                    Some(target) => (target, self.dot_length(target, &path)?),
                    None => (rec.lba, rec.data_len),
                };
                stack.push(DirJob {
                    lba,
                    len,
                    path,
                    depth: job.depth + 1,
                });
                continue;
            }

            // Without PX (no Rock Ridge) every non-directory is taken as a regular file.
            let regular = !matches!(rr.mode, Some(m) if m & S_IFMT != S_IFREG);
            let mut file = PendingFile {
                iso_name: rec.name.to_vec(),
                path,
                regular,
                size: 0,
                extents: Vec::new(),
            };
            self.add_extent(&mut file, &rec, at)?;
            if rec.flags & FLAG_MULTI_EXTENT != 0 {
                pending = Some(file);
            } else {
                self.finish(file);
            }
        }
        if let Some(file) = pending {
            return Err(corrupt(format!(
                "directory {shown:?} at LBA {} ends inside multi-extent file {:?}",
                job.lba, file.path
            )));
        }
        Ok(())
    }

    fn add_extent(&self, file: &mut PendingFile, rec: &Record<'_>, at: At) -> Result<(), IsoError> {
        let len = u64::from(rec.data_len);
        // An empty file has no data; xorriso gives it a dummy location that is never read.
        if len == 0 {
            return Ok(());
        }
        if !self.in_volume(rec.lba, len) {
            return Err(corrupt(format!(
                "file {:?} has data at LBA {} ({len} bytes) outside the volume of {} sectors (record at {at})",
                file.path, rec.lba, self.volume_blocks
            )));
        }
        file.size += len;
        file.extents.push(Extent { lba: rec.lba, len });
        Ok(())
    }

    fn finish(&mut self, file: PendingFile) {
        if file.regular {
            self.files.push(IsoFile {
                path: file.path,
                size: file.size,
                extents: file.extents,
            });
        } else {
            self.non_regular.push(file.path);
        }
    }

    /// A CL entry names only the sector of the relocated directory; its length comes from the
    /// "." record that starts it.
    fn dot_length(&mut self, lba: u32, path: &str) -> Result<u32, IsoError> {
        if !self.in_volume(lba, SECTOR_SIZE) {
            return Err(corrupt(format!(
                "child link of {path:?} points to LBA {lba}, outside the volume of {} sectors",
                self.volume_blocks
            )));
        }
        let mut sector = vec![0u8; SECTOR_SIZE as usize];
        read_at(
            self.dev,
            u64::from(lba) * SECTOR_SIZE,
            &mut sector,
            "a relocated directory",
        )?;
        let at = At {
            lba: u64::from(lba),
            off: 0,
        };
        let rec_len = usize::from(sector[0]);
        if rec_len < 34 {
            return Err(corrupt(format!(
                "child link of {path:?} points to LBA {lba}, which does not start with a directory record"
            )));
        }
        let dot = parse_record(&sector[..rec_len], at)?;
        if dot.name != [0] || dot.lba != lba {
            return Err(corrupt(format!(
                "child link of {path:?} points to LBA {lba}, which does not start with a \".\" record"
            )));
        }
        Ok(dot.data_len)
    }

    /// Collects the Rock Ridge entries of one record, following CE continuation areas.
    fn parse_susp(
        &mut self,
        system_use: &[u8],
        skip: usize,
        at: At,
    ) -> Result<RockRidge, IsoError> {
        let mut rr = RockRidge::default();
        let mut name: Option<Vec<u8>> = None;
        let mut hops = 0usize;
        let mut su_bytes = 0u64;
        let mut owned: Vec<u8>;
        let mut area: &[u8] = system_use.get(skip..).unwrap_or(&[]);
        loop {
            let mut next: Option<(u32, u32, u32)> = None;
            let mut i = 0usize;
            while i + 4 <= area.len() {
                let sig = [area[i], area[i + 1]];
                let len = usize::from(area[i + 2]);
                // Zero bytes after the last entry are padding, not an entry.
                if sig == [0, 0] && len == 0 {
                    break;
                }
                if len < 4 || i + len > area.len() {
                    return Err(corrupt(format!(
                        "SUSP entry {:?} of {len} bytes does not fit the system use area of the record at {at}",
                        String::from_utf8_lossy(&sig)
                    )));
                }
                let data = &area[i + 4..i + len];
                let too_short = || {
                    corrupt(format!(
                        "SUSP entry {:?} is too short ({len} bytes) in the record at {at}",
                        String::from_utf8_lossy(&sig)
                    ))
                };
                match &sig {
                    b"NM" => {
                        let (&flags, part) = data.split_first().ok_or_else(too_short)?;
                        // CURRENT/PARENT name "." or ".."; those records are skipped anyway.
                        if flags & 0x06 == 0 {
                            name.get_or_insert_with(Vec::new).extend_from_slice(part);
                        }
                    }
                    b"CE" => {
                        if data.len() < 24 {
                            return Err(too_short());
                        }
                        next = Some((
                            both32(&data[0..8], "CE block", at)?,
                            both32(&data[8..16], "CE offset", at)?,
                            both32(&data[16..24], "CE length", at)?,
                        ));
                    }
                    b"ST" => break,
                    b"RE" => rr.relocated = true,
                    b"CL" => {
                        if data.len() < 8 {
                            return Err(too_short());
                        }
                        rr.child_link = Some(both32(&data[0..8], "CL location", at)?);
                    }
                    b"PX" => {
                        if data.len() < 8 {
                            return Err(too_short());
                        }
                        rr.mode = Some(both32(&data[0..8], "PX mode", at)?);
                    }
                    _ => {}
                }
                i += len;
            }
            let Some((block, offset, len)) = next else {
                break;
            };
            hops += 1;
            su_bytes += u64::from(len);
            self.ce_bytes += u64::from(len);
            if self.ce_bytes > self.volume_bytes() {
                return Err(corrupt(format!(
                    "SUSP continuation areas add up to more than the volume at the record at {at}: they overlap"
                )));
            }
            if hops > MAX_CE_HOPS || su_bytes > MAX_SU_BYTES {
                return Err(corrupt(format!(
                    "SUSP continuation chain of the record at {at} is too long ({hops} areas, {su_bytes} bytes)"
                )));
            }
            owned = self.read_continuation(block, offset, len, at)?;
            area = &owned;
        }
        rr.name = name.map(|n| String::from_utf8_lossy(&n).into_owned());
        Ok(rr)
    }

    /// Returns the bytes of a CE continuation area, served from a read-ahead buffer because
    /// xorriso packs the areas of a directory's records together.
    fn read_continuation(
        &mut self,
        block: u32,
        offset: u32,
        len: u32,
        at: At,
    ) -> Result<Vec<u8>, IsoError> {
        let start = u64::from(block) * SECTOR_SIZE + u64::from(offset);
        let end = start + u64::from(len);
        if end > self.volume_bytes() {
            return Err(corrupt(format!(
                "CE entry of the record at {at} points to block {block} offset {offset} length {len}, \
                 past the end of the volume of {} sectors",
                self.volume_blocks
            )));
        }
        let cache_end = self.ce_cache_start + self.ce_cache.len() as u64;
        if start < self.ce_cache_start || end > cache_end {
            let first = start / SECTOR_SIZE;
            let needed = end.div_ceil(SECTOR_SIZE) - first;
            let sectors = needed
                .max(CE_READAHEAD_SECTORS)
                .min(u64::from(self.volume_blocks) - first);
            self.ce_cache.resize((sectors * SECTOR_SIZE) as usize, 0);
            self.ce_cache_start = first * SECTOR_SIZE;
            let got = read_some_at(self.dev, self.ce_cache_start, &mut self.ce_cache);
            // The read-ahead may hit an unreadable or missing sector the area does not need;
            // then read just what is needed, which reports the real problem if there is one.
            match got {
                // Bytes past a short read are stale; they must never be served.
                Ok(n) if n as u64 >= end - self.ce_cache_start => self.ce_cache.truncate(n),
                _ => {
                    self.ce_cache.truncate((needed * SECTOR_SIZE) as usize);
                    let what = "a SUSP continuation area";
                    if let Err(e) = read_at(self.dev, self.ce_cache_start, &mut self.ce_cache, what)
                    {
                        self.ce_cache.clear();
                        return Err(e);
                    }
                }
            }
        }
        let from = (start - self.ce_cache_start) as usize;
        Ok(self.ce_cache[from..from + len as usize].to_vec())
    }
}

/// The SUSP "SP" entry opens the system use area of the root's "." record; its LEN_SKP byte
/// says how many bytes to skip at the start of every other system use area.
fn find_sp(system_use: &[u8]) -> Option<usize> {
    match system_use {
        [b'S', b'P', 7, _, 0xBE, 0xEF, skip, ..] => Some(usize::from(*skip)),
        _ => None,
    }
}
