//! Reads images made by the real xorriso back through `witness_drivers::iso9660` and compares
//! every file byte for byte with its source, then checks that damaged images give errors.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use witness_drivers::iso9660::{file_reader, read_tree, IsoError, IsoFile, VolumeInfo};

const SECTOR: usize = 2048;

/// A directory under the system temp dir, removed on drop (also when a test fails), so the
/// 4.3 GB image of the multi-extent test never stays behind.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("witness-iso9660-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs xorriso as the burner does: UTF-8 names, Rock Ridge, Joliet, ISO level 3.
fn make_image(src: &Path, img: &Path, rockridge: bool, compliance: &str, extra: &[OsString]) {
    let mut args: Vec<OsString> = [
        "-abort_on",
        "FAILURE",
        "-local_charset",
        "UTF-8",
        "-charset",
        "UTF-8",
        "-outdev",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let mut outdev = OsString::from("stdio:");
    outdev.push(img);
    args.push(outdev);
    for a in [
        "-joliet",
        "on",
        "-rockridge",
        if rockridge { "on" } else { "off" },
        "-compliance",
        compliance,
        "-volid",
        "TESTVOL",
        "-map",
    ] {
        args.push(a.into());
    }
    args.push(src.into());
    args.push("/".into());
    args.extend(extra.iter().cloned());
    args.push("-commit".into());
    args.push("-end".into());
    let out = Command::new("xorriso")
        .args(&args)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run xorriso");
    assert!(
        out.status.success(),
        "xorriso failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const COMPLIANCE: &str = "iso_9660_level=3:joliet_long_names";

/// Deterministic bytes that differ per seed, so a file read from the wrong extent is caught.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Every regular file under `dir` by '/'-joined relative path; symlinks are left out like
/// the reader leaves them out.
fn source_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(&entry.path(), &rel, out);
            } else if kind.is_file() {
                out.insert(rel, fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out);
    out
}

fn read_file<R: Read + Seek>(dev: &mut R, file: &IsoFile) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    file_reader(dev, file).read_to_end(&mut data)?;
    Ok(data)
}

/// Reads the tree from the image file and checks paths, sizes and every byte.
fn check_image(img: &Path, expected: &BTreeMap<String, Vec<u8>>) -> (VolumeInfo, Vec<IsoFile>) {
    let mut dev = File::open(img).unwrap();
    let (info, files) = read_tree(&mut dev).unwrap();
    assert_eq!(info.volume_id, "TESTVOL");
    assert!(info.volume_space_blocks as u64 * SECTOR as u64 <= fs::metadata(img).unwrap().len());
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let want: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(paths, want, "file list differs");
    for file in &files {
        let data = &expected[&file.path];
        assert_eq!(file.size, data.len() as u64, "size of {}", file.path);
        assert_eq!(
            file.extents.iter().map(|e| e.len).sum::<u64>(),
            file.size,
            "extents of {}",
            file.path
        );
        let got = read_file(&mut dev, file).unwrap();
        assert!(got == *data, "content of {} differs", file.path);
    }
    (info, files)
}

// --- Minimal raw ECMA-119 access, so the corruption tests can aim at specific bytes. ---

fn le32(img: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(img[off..off + 4].try_into().unwrap())
}

fn set_both32(img: &mut [u8], off: usize, v: u32) {
    img[off..off + 4].copy_from_slice(&v.to_le_bytes());
    img[off + 4..off + 8].copy_from_slice(&v.to_be_bytes());
}

const PVD: usize = 16 * SECTOR;

fn volume_blocks(img: &[u8]) -> u32 {
    le32(img, PVD + 80)
}

/// (LBA, length) of the root directory extent.
fn root_extent(img: &[u8]) -> (u32, u32) {
    (le32(img, PVD + 156 + 2), le32(img, PVD + 156 + 10))
}

struct RawRecord {
    /// Absolute byte offset of the record in the image.
    pos: usize,
    len: usize,
    name: Vec<u8>,
    flags: u8,
    data_len: u32,
}

fn raw_records(img: &[u8], lba: u32, len: u32) -> Vec<RawRecord> {
    let start = lba as usize * SECTOR;
    let end = start + len as usize;
    let mut pos = start;
    let mut out = Vec::new();
    while pos < end {
        let rec_len = img[pos] as usize;
        if rec_len == 0 {
            pos = (pos / SECTOR + 1) * SECTOR;
            continue;
        }
        let name_len = img[pos + 32] as usize;
        out.push(RawRecord {
            pos,
            len: rec_len,
            name: img[pos + 33..pos + 33 + name_len].to_vec(),
            flags: img[pos + 25],
            data_len: le32(img, pos + 10),
        });
        pos += rec_len;
    }
    out
}

fn find_record<'a>(records: &'a [RawRecord], iso_name: &[u8]) -> &'a RawRecord {
    records
        .iter()
        .find(|r| r.name == iso_name)
        .expect("record in image")
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| w == &needle)
        .count()
}

/// read_tree over an in-memory image; on success also reads every file, which must not panic
/// either.
fn try_read(img: &[u8]) -> Result<(VolumeInfo, Vec<IsoFile>), IsoError> {
    let mut dev = Cursor::new(img);
    let (info, files) = read_tree(&mut dev)?;
    for file in &files {
        let _ = read_file(&mut dev, file);
    }
    Ok((info, files))
}

fn corrupt_message(result: Result<(VolumeInfo, Vec<IsoFile>), IsoError>) -> String {
    match result {
        Err(IsoError::Corrupt(msg)) => msg,
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("expected Corrupt, got a tree"),
    }
}

#[test]
fn reads_rock_ridge_tree_byte_exact() {
    let tmp = TempDir::new("tree");
    let src = tmp.path().join("src");
    write(&src, "投标文件/第1册 商务标.pdf", &content(1, 70_000));
    write(
        &src,
        "投标文件/附件/技术方案（最终版）.docx",
        &content(2, 2048),
    );
    write(&src, &"n".repeat(200), &content(3, 2049));
    write(&src, &format!("{}.txt", "档案".repeat(40)), &content(4, 10));
    let deep = (1..=10)
        .map(|i| format!("层{i}"))
        .collect::<Vec<_>>()
        .join("/");
    write(
        &src,
        &format!("{deep}/deepest file.bin"),
        &content(5, 1_048_579),
    );
    write(&src, "d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/x", b"x");
    write(&src, "empty", b"");
    write(&src, "empty dir file/also empty.txt", b"");
    write(&src, "README", b"no extension\n");
    // Names up to ~160 bytes: long enough that about a quarter of the records need a CE
    // area. (xorriso 1.5.4 itself writes a damaged image, "Calculated/written tree end
    // address mismatch", for some directories of many names of 160+ bytes, so the lengths
    // here are a mix that it handles.)
    for i in 0..3000u64 {
        let name = if i % 7 == 0 {
            format!("{i:04}-{}.txt", "档案".repeat((i % 25) as usize))
        } else {
            format!("{i:04}-{}.txt", "n".repeat((i % 150) as usize))
        };
        write(
            &src,
            &format!("many/{name}"),
            &content(100 + i, (i % 3000) as usize),
        );
    }
    std::os::unix::fs::symlink("empty", src.join("link")).unwrap();

    let cut_src = tmp.path().join("cut-source.bin");
    let cut_data = content(6, 100_000);
    fs::write(&cut_src, &cut_data).unwrap();
    let cut = |offset: &str, count: &str, iso_path: &str| -> Vec<OsString> {
        vec![
            "-cut_out".into(),
            cut_src.clone().into(),
            offset.into(),
            count.into(),
            iso_path.into(),
        ]
    };
    let mut extra = cut("1000", "5000", "/切片/part1.bin");
    // A byte count past the end of the source is clipped by xorriso.
    extra.extend(cut("99000", "5000", "/切片/tail.bin"));
    extra.extend(cut("0", "2048", "/切片/head.bin"));

    let img = tmp.path().join("tree.iso");
    make_image(&src, &img, true, COMPLIANCE, &extra);

    let mut expected = source_files(&src);
    expected.insert("切片/part1.bin".into(), cut_data[1000..6000].to_vec());
    expected.insert("切片/tail.bin".into(), cut_data[99_000..].to_vec());
    expected.insert("切片/head.bin".into(), cut_data[..2048].to_vec());
    assert_eq!(expected.len(), 3000 + 12);

    let (info, files) = check_image(&img, &expected);
    assert!(info.rock_ridge);
    assert_eq!(info.non_regular, vec!["link".to_string()]);
    let empty = files.iter().find(|f| f.path == "empty").unwrap();
    assert!(empty.extents.is_empty());

    // The test is only worth something if xorriso really used the hard parts.
    let bytes = fs::read(&img).unwrap();
    assert!(
        count(&bytes, b"CE\x1c\x01") > 100,
        "xorriso wrote no SUSP continuation areas"
    );
    let (root_lba, root_len) = root_extent(&bytes);
    let root_records = raw_records(&bytes, root_lba, root_len);
    let many = find_record(&root_records, b"MANY");
    assert!(
        many.data_len as usize > 50 * SECTOR,
        "'many' spans only {} bytes",
        many.data_len
    );
}

#[test]
fn follows_rock_ridge_relocated_directories() {
    let tmp = TempDir::new("reloc");
    let src = tmp.path().join("src");
    let deep = (1..=12)
        .map(|i| format!("目录{i}"))
        .collect::<Vec<_>>()
        .join("/");
    write(&src, &format!("{deep}/deep.txt"), &content(7, 3000));
    write(&src, &format!("{deep}/sub/deeper.txt"), &content(8, 5));
    write(&src, "目录1/shallow.txt", &content(9, 1));
    let img = tmp.path().join("reloc.iso");
    // Without deep_paths xorriso moves directories below level 8 to a relocation directory
    // and links them back with Rock Ridge CL/PL/RE entries.
    make_image(
        &src,
        &img,
        true,
        &format!("{COMPLIANCE}:deep_paths_off"),
        &[],
    );
    let bytes = fs::read(&img).unwrap();
    assert!(
        count(&bytes, b"CL\x0c\x01") >= 1,
        "xorriso did not relocate"
    );
    assert!(
        count(&bytes, b"RE\x04\x01") >= 1,
        "xorriso did not relocate"
    );
    check_image(&img, &source_files(&src));
}

#[test]
fn plain_iso_names_without_rock_ridge() {
    let tmp = TempDir::new("plain");
    let src = tmp.path().join("src");
    write(&src, "hello.txt", b"a");
    write(&src, "README", b"b");
    write(&src, "sub/Mixed_Case.Name.tar.gz", b"c");
    let img = tmp.path().join("plain.iso");
    make_image(&src, &img, false, COMPLIANCE, &[]);
    let mut dev = File::open(&img).unwrap();
    let (info, files) = read_tree(&mut dev).unwrap();
    assert!(!info.rock_ridge);
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["HELLO.TXT", "README", "SUB/MIXED_CASE_NAME_TAR.GZ"]);
    assert_eq!(read_file(&mut dev, &files[2]).unwrap(), b"c");
}

fn sha256_of(mut reader: impl Read) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.finalize().into()
}

#[test]
fn multi_extent_file_over_4_gib() {
    const SIZE: u64 = 4_300_000_000;
    const GIB4: u64 = 1 << 32;
    let tmp = TempDir::new("big");
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let big = src.join("大文件.bin");
    {
        let mut f = File::create(&big).unwrap();
        f.set_len(SIZE).unwrap();
        // Marks at the start, around the 4 GiB - 2 KiB extent size xorriso uses, around
        // 4 GiB, and at the end; the rest stays sparse.
        for (i, at) in [0, GIB4 - 2048 - 7, GIB4 - 3, GIB4 + 5, SIZE - 11]
            .into_iter()
            .enumerate()
        {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&content(i as u64 + 50, 10)).unwrap();
        }
    }
    write(&src, "small.txt", b"small");
    let img = tmp.path().join("big.iso");
    make_image(&src, &img, true, COMPLIANCE, &[]);

    let mut dev = File::open(&img).unwrap();
    let (_, files) = read_tree(&mut dev).unwrap();
    assert_eq!(files.len(), 2);
    // Sorted by path bytes: ASCII before CJK.
    let (small, file) = (&files[0], &files[1]);
    assert_eq!(small.path, "small.txt");
    assert_eq!(file.path, "大文件.bin");
    assert_eq!(file.size, SIZE);
    assert!(file.extents.len() >= 2, "extents: {:?}", file.extents);
    assert_eq!(file.extents.iter().map(|e| e.len).sum::<u64>(), SIZE);
    assert_eq!(read_file(&mut dev, small).unwrap(), b"small");

    let from_iso = sha256_of(file_reader(&mut dev, file));
    let from_source = sha256_of(File::open(&big).unwrap());
    assert_eq!(from_iso, from_source);
}

/// A small image used by the corruption tests: a few files in subdirectories, and enough
/// files with long names at the root that the root spans several sectors and uses CE areas.
fn small_image(tmp: &TempDir) -> Vec<u8> {
    let src = tmp.path().join("src");
    write(&src, "sub/a.txt", &content(10, 3000));
    write(&src, "sub/inner/b.txt", &content(11, 5));
    write(&src, "中文/c.bin", &content(12, 40_000));
    for i in 0..300u64 {
        write(
            &src,
            &format!("{i:03}-{}", "r".repeat((i * 7 % 230) as usize)),
            &content(200 + i, 100),
        );
    }
    let img = tmp.path().join("small.iso");
    make_image(&src, &img, true, COMPLIANCE, &[]);
    let bytes = fs::read(&img).unwrap();
    let (_, files) = try_read(&bytes).unwrap();
    assert_eq!(files.len(), 303);
    bytes
}

#[test]
fn not_iso9660() {
    assert!(matches!(try_read(&[]), Err(IsoError::NotIso9660)));
    assert!(matches!(
        try_read(&content(13, 200_000)),
        Err(IsoError::NotIso9660)
    ));
    assert!(matches!(
        try_read(&vec![0u8; 200_000]),
        Err(IsoError::NotIso9660)
    ));
}

#[test]
fn truncated_image_is_an_error() {
    let tmp = TempDir::new("trunc");
    let img = small_image(&tmp);
    let volume = volume_blocks(&img) as usize * SECTOR;
    for len in [0, 4096, PVD + 1000, PVD + SECTOR, volume / 2, volume - 1] {
        let result = try_read(&img[..len]);
        assert!(result.is_err(), "image cut at {len} bytes was accepted");
        if len >= PVD + SECTOR {
            assert!(
                matches!(result, Err(IsoError::Truncated { .. })),
                "cut at {len}: {result:?}"
            );
        }
    }

    // A device that ends inside file data (the reader cannot tell in advance) must give an
    // error from file_reader, not a short file.
    let (_, files) = try_read(&img).unwrap();
    let last = files
        .iter()
        .max_by_key(|f| f.extents.last().map(|e| e.lba))
        .unwrap();
    let cut = last.extents[0].lba as usize * SECTOR + 2;
    let mut dev = Cursor::new(&img[..cut]);
    let err = read_file(&mut dev, last).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn garbage_in_pvd_is_an_error() {
    let tmp = TempDir::new("pvd");
    let img = small_image(&tmp);

    let mut zeroed = img.clone();
    zeroed[PVD..PVD + SECTOR].fill(0);
    assert!(matches!(try_read(&zeroed), Err(IsoError::NotIso9660)));

    let mut root_garbage = img.clone();
    root_garbage[PVD + 156..PVD + 190].copy_from_slice(&content(14, 34));
    assert!(try_read(&root_garbage).is_err());

    let mut space = img.clone();
    space[PVD + 80] ^= 0x40;
    let msg = corrupt_message(try_read(&space));
    assert!(msg.contains("volume space size"), "{msg}");

    let mut all_garbage = img.clone();
    all_garbage[PVD + 7..PVD + SECTOR].copy_from_slice(&content(15, SECTOR - 7));
    assert!(try_read(&all_garbage).is_err());

    // Consistent both-endian fields, but the root points at a sector that is no directory.
    let mut wrong_root = img.clone();
    set_both32(&mut wrong_root, PVD + 156 + 2, 17);
    corrupt_message(try_read(&wrong_root));

    let mut huge_root = img.clone();
    set_both32(&mut huge_root, PVD + 156 + 10, u32::MAX);
    corrupt_message(try_read(&huge_root));
}

#[test]
fn record_running_past_its_sector_is_an_error() {
    let tmp = TempDir::new("record");
    let img = small_image(&tmp);
    let (root_lba, root_len) = root_extent(&img);
    let records = raw_records(&img, root_lba, root_len);
    // Find a sector whose last record leaves a few padding bytes, and make the first padding
    // byte a record length that reaches over the sector end.
    let (end, free) = records
        .windows(2)
        .filter(|w| w[0].pos / SECTOR != w[1].pos / SECTOR)
        .map(|w| {
            let end = w[0].pos + w[0].len;
            (end, SECTOR - end % SECTOR)
        })
        .find(|&(_, free)| (1..=220).contains(&free))
        .expect("a sector with padding at its end");
    let mut bad = img.clone();
    bad[end] = (free + 1).max(34) as u8;
    let msg = corrupt_message(try_read(&bad));
    assert!(msg.contains("runs past the end of its sector"), "{msg}");

    let mut short = img.clone();
    short[records[5].pos] = 20;
    corrupt_message(try_read(&short));
}

#[test]
fn ce_past_the_end_is_an_error() {
    let tmp = TempDir::new("ce");
    let img = small_image(&tmp);
    let mut bad = img.clone();
    let beyond = volume_blocks(&img) + 10;
    let mut patched = 0;
    for pos in 0..bad.len() - 28 {
        if &bad[pos..pos + 4] == b"CE\x1c\x01" {
            set_both32(&mut bad, pos + 4, beyond);
            patched += 1;
        }
    }
    assert!(patched > 0, "no CE entries in the image");
    let msg = corrupt_message(try_read(&bad));
    assert!(msg.contains("CE entry"), "{msg}");
}

#[test]
fn directory_loops_and_wild_extents_are_errors() {
    let tmp = TempDir::new("loop");
    let img = small_image(&tmp);
    let (root_lba, root_len) = root_extent(&img);
    let records = raw_records(&img, root_lba, root_len);
    let sub = find_record(&records, b"SUB");
    assert_ne!(sub.flags & 0x02, 0);

    let mut looped = img.clone();
    set_both32(&mut looped, sub.pos + 2, root_lba);
    let msg = corrupt_message(try_read(&looped));
    assert!(msg.contains("loop"), "{msg}");

    let mut outside = img.clone();
    set_both32(&mut outside, sub.pos + 2, volume_blocks(&img) + 5);
    let msg = corrupt_message(try_read(&outside));
    assert!(msg.contains("outside the volume"), "{msg}");

    let mut absurd = img.clone();
    set_both32(&mut absurd, sub.pos + 10, 0xFFFF_F000);
    corrupt_message(try_read(&absurd));

    let file = records
        .iter()
        .find(|r| r.flags & 0x02 == 0 && r.data_len > 0)
        .unwrap();
    let mut wild_file = img.clone();
    set_both32(&mut wild_file, file.pos + 2, u32::MAX - 1);
    let msg = corrupt_message(try_read(&wild_file));
    assert!(msg.contains("outside the volume"), "{msg}");
}

#[test]
fn random_damage_never_panics_or_hangs() {
    let tmp = TempDir::new("fuzz");
    let img = small_image(&tmp);
    // Damage the descriptors, the path tables, the directories and the CE areas: everything
    // xorriso writes before the first file's data.
    let (_, files) = try_read(&img).unwrap();
    let meta_end = files
        .iter()
        .flat_map(|f| f.extents.iter())
        .map(|e| e.lba as usize * SECTOR)
        .min()
        .unwrap();
    let mut work = img.clone();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..400 {
        let hits = 1 + next() % 6;
        let mut touched = Vec::new();
        for _ in 0..hits {
            let pos = PVD + (next() as usize) % (meta_end - PVD);
            touched.push(pos);
            work[pos] = next() as u8;
        }
        let _ = try_read(&work);
        for pos in touched {
            work[pos] = img[pos];
        }
    }
}
