//! The whole backup, end to end, through the CLI: a project with Chinese names and a file larger
//! than a disc becomes a set of verified virtual discs plus a disk copy, and every disc is checked
//! the way someone holding it would check it (xorriso, bagit.py, Python's own SM3, byte compares).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use witness_schemas::api::{CopyKind, Disc, DiscStatus};
use witness_tests::daemon::{extract_with_xorriso, validate_bag, Daemon};

/// 8 MiB virtual discs: small enough that the test needs several, big enough for the metadata.
const DISC_BYTES: u64 = 8 * 1024 * 1024;
/// The file that cannot fit on one disc.
const BIG_FILE: &str = "评标录像/评标室1-通道01.mp4";
const BIG_BYTES: usize = 20 * 1024 * 1024;
const PROJECT: &str = "豫兰考工〔2026〕12号";

/// Checks one extracted bag independently of Witness, as RFC 8493 reads it, and prints a JSON
/// report: completeness and every digest of both manifests with Python's hashlib (its own SM3),
/// both tag manifests, Payload-Oxum, and the XML record's file list and disc number.
const CHECK_BAG_PY: &str = r#"
import hashlib, json, os, sys
import xml.etree.ElementTree as ET

root = sys.argv[1]
report = {"errors": [], "sm3_checked": 0, "sha256_checked": 0, "tags_checked": 0,
          "record_files": [], "record_disc": None, "record_count": None}

def decode(p):
    # RFC 8493 section 2.1.3: only CR, LF and % are percent-encoded in manifests.
    return (p.replace("%0A", "\n").replace("%0a", "\n").replace("%0D", "\r")
             .replace("%0d", "\r").replace("%25", "%"))

def digest(algorithm, path):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def manifest(name):
    entries = {}
    with open(os.path.join(root, name), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            value, path = line.split(None, 1)
            entries[decode(path)] = value.lower()
    return entries

on_disc = set()
for dirpath, _, names in os.walk(os.path.join(root, "data")):
    for name in names:
        on_disc.add(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))

for algorithm in ("sm3", "sha256"):
    payload = manifest("manifest-%s.txt" % algorithm)
    for path in sorted(on_disc - set(payload)):
        report["errors"].append("not in manifest-%s.txt: %s" % (algorithm, path))
    for path, value in sorted(payload.items()):
        full = os.path.join(root, path)
        if not os.path.isfile(full):
            report["errors"].append("listed but missing: " + path)
            continue
        actual = digest(algorithm, full)
        if actual != value:
            report["errors"].append("%s mismatch: %s manifest %s actual %s" % (algorithm, path, value, actual))
        report[algorithm + "_checked"] += 1
    for path, value in sorted(manifest("tagmanifest-%s.txt" % algorithm).items()):
        if digest(algorithm, os.path.join(root, path)) != value:
            report["errors"].append("tag %s mismatch: %s" % (algorithm, path))
        report["tags_checked"] += 1

with open(os.path.join(root, "bag-info.txt"), encoding="utf-8") as f:
    info = dict(line.rstrip("\n").split(": ", 1) for line in f if ": " in line)
octets = sum(os.path.getsize(os.path.join(root, p)) for p in on_disc)
if info.get("Payload-Oxum") != "%d.%d" % (octets, len(on_disc)):
    report["errors"].append("Payload-Oxum %s, found %d.%d" % (info.get("Payload-Oxum"), octets, len(on_disc)))

ns = "{http://www.saac.gov.cn/standard/eep/2009}"
tree = ET.parse(os.path.join(root, "witness-record.xml"))
report["record_files"] = [e.text for e in tree.getroot().iter(ns + "文件名")]
carrier = next(tree.getroot().iter(ns + "载体"), None)
if carrier is not None:
    report["record_disc"] = carrier.get("本盘序号")
    report["record_count"] = carrier.get("总盘数")
json.dump(report, sys.stdout, ensure_ascii=False)
"#;

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

fn write(root: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().context("parent")?)?;
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// The project folder: documents and recordings with Chinese names, spaces, `%` and `#`, about
/// 300 small files in nested folders, an empty file, and one file larger than a disc.
fn make_sources(root: &Path) -> Result<()> {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    write(
        root,
        "投标文件/第1册 商务标.txt",
        "第一册 商务标\n投标人：兰考县某某建设有限公司\n报价：壹佰贰拾万元整\n"
            .repeat(40)
            .as_bytes(),
    )?;
    write(root, "投标文件/第2册 技术标.txt", &rng.bytes(90_000))?;
    write(root, "投标文件/第3册 资格审查 #1.pdf", &rng.bytes(250_000))?;
    write(root, BIG_FILE, &rng.bytes(BIG_BYTES))?;
    write(root, "评标录像/评标室1-通道02.mp4", &rng.bytes(1_500_000))?;
    write(root, "附件/完成率 100% 报告.docx", &rng.bytes(33_333))?;
    write(
        root,
        "附件/编号#42 说明 (终稿).txt",
        "说明文字 #42\n".as_bytes(),
    )?;
    write(
        root,
        "附件/a%20b%25c.txt",
        b"literal percent signs in the name",
    )?;
    write(root, "附件/空文件.txt", b"")?;
    write(
        root,
        "附件/#2 补充 %材料/说明 第 1 页.txt",
        &rng.bytes(4_096),
    )?;
    for i in 0..290u64 {
        let size = if i % 29 == 0 {
            150_000 + (rng.next() % 100_000) as usize
        } else {
            (rng.next() % 16_000) as usize + 1
        };
        let rel = format!(
            "评审资料/分包{:02}/第{} 组/专家{}/评分表 {:03}.{}",
            i % 7,
            i % 3 + 1,
            i % 5,
            i,
            ["txt", "pdf", "xlsx", "jpg"][(i % 4) as usize]
        );
        write(root, &rel, &rng.bytes(size))?;
    }
    Ok(())
}

/// Every regular file under `root`, by `/`-separated path relative to it.
fn files_under(root: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)?
                    .to_str()
                    .context("UTF-8 name")?
                    .to_string();
                out.insert(rel, path);
            }
        }
    }
    Ok(out)
}

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// What the independent Python check found in one bag.
struct BagReport {
    sm3_checked: u64,
    sha256_checked: u64,
    tags_checked: u64,
    record_files: BTreeSet<String>,
    record_disc: Option<String>,
    record_count: Option<String>,
}

fn check_bag_with_python(script: &Path, bag: &Path) -> Result<BagReport> {
    let output = Command::new(python())
        .arg(script)
        .arg(bag)
        .output()
        .context("running python3")?;
    ensure!(
        output.status.success(),
        "python3 check of {} failed: {}",
        bag.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "python3 report: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let errors = report["errors"].as_array().context("errors")?;
    ensure!(errors.is_empty(), "{}: {errors:#?}", bag.display());
    Ok(BagReport {
        sm3_checked: report["sm3_checked"].as_u64().unwrap_or(0),
        sha256_checked: report["sha256_checked"].as_u64().unwrap_or(0),
        tags_checked: report["tags_checked"].as_u64().unwrap_or(0),
        record_files: report["record_files"]
            .as_array()
            .context("record_files")?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        record_disc: report["record_disc"].as_str().map(str::to_string),
        record_count: report["record_count"].as_str().map(str::to_string),
    })
}

/// `bagit.py --validate`. bagit-python 1.9 does not decode `%25` in manifest paths (RFC 8493
/// §2.1.3 requires `%` to be encoded; bagit-python issue #157), so on a bag holding a file whose
/// name has a `%` it reports that file missing and "not in the manifest" under its real name and
/// stops before checking digests. Exactly that complaint, for `%` names only, is accepted here and
/// counted; anything else fails. (The Python check above covers those files' digests.)
fn bagit_validate(bag: &Path) -> Result<usize> {
    let Err(error) = validate_bag(bag) else {
        return Ok(0);
    };
    let text = format!("{error:#}");
    let mut missing = BTreeSet::new();
    let mut extra = BTreeSet::new();
    for line in text.lines() {
        if let Some((_, warning)) = line.split_once(" - WARNING - ") {
            if let Some(path) =
                warning.strip_suffix(" exists in manifest but was not found on filesystem")
            {
                missing.insert(path.to_string());
                continue;
            }
            if let Some(path) =
                warning.strip_suffix(" exists on filesystem but is not in the manifest")
            {
                extra.insert(path.to_string());
                continue;
            }
            bail!("bagit.py: {warning}\n{text}");
        } else if line.contains(" - ERROR - ") && !line.contains("is invalid: Bag is incomplete") {
            bail!("{text}");
        }
    }
    let decoded: BTreeSet<String> = missing
        .iter()
        .map(|p| witness_schemas::bag::decode_path(p))
        .collect();
    ensure!(
        !missing.is_empty() && missing.iter().all(|p| p.contains("%25")) && decoded == extra,
        "bagit.py found more than its %25 decoding gap:\n{text}"
    );
    Ok(missing.len())
}

fn bag_info(bag: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(bag.join("bag-info.txt"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// `witness-split-files.txt`: original path → (disc, part path) in order.
fn split_files(text: &str) -> BTreeMap<String, Vec<(u32, String)>> {
    let mut out: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("file: data/") {
            let path = witness_schemas::bag::decode_path(path);
            out.entry(path.clone()).or_default();
            current = Some(path);
        } else if let Some(rest) = line.strip_prefix("part: disc ") {
            let (disc, part) = rest.split_once(" data/").unwrap_or(("0", ""));
            if let Some(file) = &current {
                out.get_mut(file).expect("current file").push((
                    disc.parse().unwrap_or(0),
                    witness_schemas::bag::decode_path(part),
                ));
            }
        }
    }
    out
}

fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    Ok(std::fs::read(a).with_context(|| a.display().to_string())?
        == std::fs::read(b).with_context(|| b.display().to_string())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_becomes_a_verified_disc_set_and_a_disk_copy() -> Result<()> {
    let started = std::time::Instant::now();
    let tmp = tempfile::tempdir()?;
    let sources = tmp.path().join("源文件");
    make_sources(&sources)?;
    let source_files = files_under(&sources)?;
    assert!(
        source_files.len() >= 300,
        "{} source files",
        source_files.len()
    );

    let data = tmp.path().join("data");
    let hdd = tmp.path().join("hdd1");
    std::fs::create_dir_all(&hdd)?;
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = {DISC_BYTES}\n\n\
             [[disks]]\nname = \"hdd1\"\npath = {:?}\n\n[copies]\noptical = 1\ndisk = 1\n",
            hdd.display().to_string()
        ),
    )?;
    let daemon = Daemon::start(&data, Some(&config)).await?;
    let result = run(&daemon, tmp.path(), &sources, &source_files, &data).await;
    if let Err(e) = &result {
        eprintln!("daemon log:\n{}", daemon.log_text());
        eprintln!("failed after {:?}: {e:#}", started.elapsed());
    }
    eprintln!("backup_e2e took {:?}", started.elapsed());
    result
}

async fn run(
    daemon: &Daemon,
    tmp: &Path,
    sources: &Path,
    source_files: &BTreeMap<String, PathBuf>,
    data: &Path,
) -> Result<()> {
    let cli = |args: &[&str]| -> Result<String> {
        let (ok, stdout, stderr) = daemon.cli(args);
        ensure!(
            ok,
            "witness {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
        );
        Ok(stdout)
    };
    cli(&[
        "project",
        "add",
        "--number",
        PROJECT,
        "--name",
        "兰考县城区道路改造工程（第一标段）",
        "--category",
        "construction",
        "--opening",
        "2026-03-18T09:30:00+08:00",
    ])?;
    // Each top-level entry of the project folder, so package paths are relative to it.
    let mut add = vec![
        "source".to_string(),
        "add".into(),
        "--project".into(),
        PROJECT.into(),
    ];
    for entry in std::fs::read_dir(sources)? {
        add.push(entry?.path().display().to_string());
    }
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let out = cli(&add)?;
    ensure!(
        out.contains(&format!("{} 个文件", source_files.len())),
        "source add said: {out}"
    );

    let backup_started = std::time::Instant::now();
    let out = cli(&["backup", "--project", PROJECT, "--wait"])?;
    eprintln!(
        "backup --wait took {:?}: {}",
        backup_started.elapsed(),
        out.trim()
    );

    // The catalog: one complete verified set of discs and one verified disk copy, nothing else.
    let discs: Vec<Disc> = serde_json::from_str(&cli(&["discs", "--json"])?)?;
    let rejected: Vec<&Disc> = discs
        .iter()
        .filter(|d| d.status != DiscStatus::Verified)
        .collect();
    ensure!(
        rejected.is_empty(),
        "copies that are not verified: {rejected:#?}"
    );
    let mut optical: Vec<&Disc> = discs
        .iter()
        .filter(|d| d.kind == CopyKind::Optical)
        .collect();
    optical.sort_by_key(|d| d.set_index);
    let disk: Vec<&Disc> = discs.iter().filter(|d| d.kind == CopyKind::Disk).collect();
    let n = optical.len();
    ensure!(
        n >= 3,
        "expected the 20 MiB file to need at least 3 discs of 8 MiB, got {n}"
    );
    for (i, disc) in optical.iter().enumerate() {
        ensure!(disc.set_index == i as i64 + 1, "set indices: {optical:#?}");
        ensure!(
            disc.set_count == n as i64,
            "set_count of disc {}: {}",
            disc.set_index,
            disc.set_count
        );
        ensure!(disc.project_number == PROJECT && disc.medium == "bd-r" && disc.target == "bd1");
    }
    ensure!(disk.len() == 1, "disk copies: {disk:#?}");

    // No stray images beside the set's.
    let images: BTreeSet<PathBuf> = std::fs::read_dir(data.join("drives/bd1"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    let expected_images: BTreeSet<PathBuf> =
        optical.iter().map(|d| PathBuf::from(&d.location)).collect();
    ensure!(
        images == expected_images,
        "images {images:#?} vs catalog {expected_images:#?}"
    );

    let script = tmp.join("check_bag.py");
    std::fs::write(&script, CHECK_BAG_PY)?;
    let all_paths: BTreeSet<String> = source_files.keys().cloned().collect();
    // Files Witness adds to the package itself (e.g. the project's audit log) live under the
    // reserved `_witness/` folder; found from the first disc's record, the same on every copy.
    let mut own_files: Option<BTreeSet<String>> = None;

    // Each disc on its own: extract, validate, check SM3 independently, read its tag files.
    let mut extracted = Vec::new();
    let mut group = None;
    let mut whole_on: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut splits = None;
    let mut percent_names = 0;
    for disc in &optical {
        let i = disc.set_index as usize;
        let image = Path::new(&disc.location);
        ensure!(
            std::fs::metadata(image)?.len() <= DISC_BYTES,
            "image {} is larger than the disc",
            image.display()
        );
        let dir = tmp.join(format!("disc{i}"));
        std::fs::create_dir_all(&dir)?;
        extract_with_xorriso(image, &dir)?;
        percent_names += bagit_validate(&dir).with_context(|| format!("disc {i}"))?;
        let info = bag_info(&dir)?;
        ensure!(
            info.get("Bag-Count") == Some(&format!("{i} of {n}")),
            "disc {i} bag-info: {info:#?}"
        );
        let id = info
            .get("Bag-Group-Identifier")
            .context("Bag-Group-Identifier")?
            .clone();
        ensure!(
            group.get_or_insert_with(|| id.clone()) == &id,
            "disc {i} is in group {id}, not {group:?}"
        );
        ensure!(info.get("External-Identifier").map(String::as_str) == Some(PROJECT));

        let report = check_bag_with_python(&script, &dir).with_context(|| format!("disc {i}"))?;
        ensure!(
            report.sm3_checked > 0
                && report.sha256_checked == report.sm3_checked
                && report.tags_checked >= 10,
            "disc {i}: too little checked"
        );
        ensure!(
            report.record_files.is_superset(&all_paths),
            "disc {i}: the XML record lists {} files, the project has {}; missing {:?}",
            report.record_files.len(),
            all_paths.len(),
            all_paths
                .difference(&report.record_files)
                .take(5)
                .collect::<Vec<_>>()
        );
        let own: BTreeSet<String> = report
            .record_files
            .difference(&all_paths)
            .cloned()
            .collect();
        ensure!(
            own.iter().all(|p| p.starts_with("_witness/")),
            "disc {i}: the record lists files that are neither the project's nor Witness's: {own:?}"
        );
        ensure!(
            own_files.get_or_insert_with(|| own.clone()) == &own,
            "disc {i}: the record lists other files than disc 1's"
        );
        ensure!(
            report.record_disc.as_deref() == Some(&*i.to_string())
                && report.record_count.as_deref() == Some(&*n.to_string()),
            "disc {i}: record says disc {:?} of {:?}",
            report.record_disc,
            report.record_count
        );
        let readme = std::fs::read_to_string(dir.join("README.txt"))?;
        ensure!(
            readme.contains(&format!("第 {i} 盘，共 {n} 盘")),
            "disc {i} README:\n{readme}"
        );
        ensure!(readme.contains(PROJECT), "README does not name the project");

        let split_text = std::fs::read_to_string(dir.join("witness-split-files.txt"))
            .with_context(|| format!("disc {i} has no witness-split-files.txt"))?;
        let parsed = split_files(&split_text);
        ensure!(
            splits.get_or_insert_with(|| parsed.clone()) == &parsed,
            "split files differ on disc {i}"
        );

        for rel in files_under(&dir.join("data"))?.into_keys() {
            whole_on.entry(rel).or_default().push(i);
        }
        extracted.push(dir);
    }

    // Three payload files have a `%` in their path; bagit.py 1.9 cannot read those lines.
    let percent_sources = source_files.keys().filter(|p| p.contains('%')).count();
    ensure!(
        percent_names == percent_sources,
        "{percent_names} bagit.py %25 complaints, {percent_sources} % names"
    );
    eprintln!(
        "bagit.py accepted every disc but for its %25 decoding gap on {percent_names} file names"
    );
    eprintln!(
        "{n} discs, {} project files, Witness's own files {own_files:?}",
        all_paths.len()
    );

    // The split file: parts named in order, on the discs the instructions name, joined back.
    let splits = splits.context("no discs")?;
    ensure!(
        splits.keys().collect::<Vec<_>>() == vec![BIG_FILE],
        "split files: {splits:#?}"
    );
    let parts = &splits[BIG_FILE];
    ensure!(parts.len() >= 3, "{BIG_FILE} in {} parts", parts.len());
    let mut joined = Vec::with_capacity(BIG_BYTES);
    for (k, (disc, part)) in parts.iter().enumerate() {
        ensure!(
            part == &format!("{BIG_FILE}.part{:03}", k + 1),
            "part {k}: {part}"
        );
        ensure!(
            whole_on.remove(part) == Some(vec![*disc as usize]),
            "{part} is not (only) on disc {disc}"
        );
        joined.extend(std::fs::read(
            extracted[*disc as usize - 1].join("data").join(part),
        )?);
    }
    ensure!(
        joined == std::fs::read(&source_files[BIG_FILE])?,
        "the joined parts differ from {BIG_FILE}"
    );

    // Every other file whole on exactly one disc, byte for byte the source; nothing else.
    for (rel, origin) in source_files {
        if rel == BIG_FILE {
            ensure!(!whole_on.contains_key(rel), "{rel} is also on a disc whole");
            continue;
        }
        let on = whole_on.remove(rel).unwrap_or_default();
        ensure!(on.len() == 1, "{rel} is on discs {on:?}");
        ensure!(
            same_bytes(origin, &extracted[on[0] - 1].join("data").join(rel))?,
            "{rel} on disc {} differs from the source",
            on[0]
        );
    }
    // What is left is Witness's own files, each whole on exactly one disc.
    let own_files = own_files.unwrap_or_default();
    let mut own_on = BTreeMap::new();
    for (rel, on) in whole_on {
        ensure!(
            own_files.contains(&rel) && on.len() == 1,
            "{rel} is on discs {on:?} but is not a file of the package"
        );
        let path = extracted[on[0] - 1].join("data").join(&rel);
        own_on.insert(rel, path);
    }
    ensure!(
        own_on.len() == own_files.len(),
        "Witness's own files {own_files:?}, on the discs {:?}",
        own_on.keys()
    );

    // The disk copy: one bag with every file whole.
    let copy = Path::new(&disk[0].location);
    ensure!(
        copy.starts_with(tmp.join("hdd1")),
        "disk copy at {}",
        copy.display()
    );
    ensure!(
        bagit_validate(copy)? == percent_sources,
        "disk copy: bagit.py"
    );
    let info = bag_info(copy)?;
    ensure!(
        info.get("Bag-Count").map(String::as_str) == Some("1 of 1"),
        "{info:#?}"
    );
    ensure!(
        info.get("Bag-Group-Identifier") == group.as_ref(),
        "disk copy in another group"
    );
    let report = check_bag_with_python(&script, copy)?;
    let package_files = all_paths.len() + own_files.len();
    ensure!(
        report.sm3_checked as usize == package_files && report.sha256_checked == report.sm3_checked
    );
    ensure!(report.record_files == all_paths.union(&own_files).cloned().collect());
    let copied = files_under(&copy.join("data"))?;
    ensure!(
        copied.keys().cloned().collect::<BTreeSet<_>>()
            == all_paths.union(&own_files).cloned().collect(),
        "disk copy files differ from the package's"
    );
    for (rel, origin) in source_files.iter().chain(&own_on) {
        if !same_bytes(origin, &copied[rel])? {
            bail!("{rel} in the disk copy differs from the source (or the disc)");
        }
    }
    // Staging is cleaned up once everything is verified.
    let staging = data.join("staging");
    ensure!(
        !staging.exists() || std::fs::read_dir(&staging)?.next().is_none(),
        "staging left behind"
    );
    Ok(())
}
