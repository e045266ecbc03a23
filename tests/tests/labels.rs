//! Disc-face labels: every merge field is in the PDF's text (read back with poppler's
//! `pdftotext`), the QR code in the PNG decodes (rqrr) to the project's catalog page, a
//! 60-character Chinese name is set whole inside the printable ring (by the layout's glyph boxes
//! and by the PNG's pixels), bad templates and names too long to fit are refused, and the
//! preview route of the running daemon serves the face.

use std::path::Path;
use std::process::Command;

use witness_controller::labels::{self, Fields, LabelSettings, Rendered};
use witness_schemas::api::{
    Category, DiscStatus, JobStatus, LabelPrintResult, NewProject, PrinterInfo,
};
use witness_schemas::config::Config;
use witness_tests::daemon::Daemon;

/// 60 characters, as long as the longest names in a year of Henan tender notices.
const LONG_NAME: &str =
    "郑州市郑东新区龙湖金融岛外环路道路综合整治及配套市政基础设施提升改造工程施工总承包三标段工程监理服务与全过程工程造价咨询";

fn settings() -> LabelSettings {
    LabelSettings::from_config(&Config::default()).expect("default label settings")
}

fn fields(name: &str) -> Fields {
    let labels = settings();
    Fields {
        project_name: name.to_string(),
        project_number: "ZB2026-0042".into(),
        opening_date: "2026-03-18 09:30".into(),
        disc_index: 2,
        disc_count: 3,
        copy_kind: "光盘 BD-R 25GB".into(),
        copy_index: 1,
        burn_date: "2026-11-29".into(),
        catalog_url: labels.catalog_url("ZB2026-0042"),
        organization: "郑州市公共资源交易中心".into(),
        volume_id: "ZB2026_0042_2".into(),
        reject_reason: String::new(),
    }
}

fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("face.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (Debian package poppler-utils) is installed");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text with all white space removed: a wrapped name comes back as separate lines.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn decode_png(png: &[u8]) -> tiny_skia::Pixmap {
    tiny_skia::Pixmap::decode_png(png).expect("a PNG")
}

fn decode_qr(pixmap: &tiny_skia::Pixmap) -> Vec<String> {
    let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
    let pixels = pixmap.pixels();
    // Transparent (outside the ring) reads as white, like the disc's silver would to a camera.
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = pixels[y * w + x].demultiply();
        if p.alpha() < 128 {
            255
        } else {
            ((u16::from(p.red()) + u16::from(p.green()) + u16::from(p.blue())) / 3) as u8
        }
    });
    image
        .detect_grids()
        .iter()
        .map(|g| g.decode().expect("QR decodes").1)
        .collect()
}

fn render(template: &str, fields: &Fields) -> Rendered {
    labels::render(&settings(), template, fields).expect("renders")
}

#[test]
fn every_field_is_in_the_pdf_text_and_the_qr_code_opens_the_project_page() {
    let f = fields(LONG_NAME);
    let face = render("standard", &f);
    assert!(face.pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&face.pdf);
    let flat = squeeze(&text);
    for expected in [
        LONG_NAME,
        "ZB2026-0042",
        "开标2026-03-1809:30",
        "第2/3张",
        "光盘BD-R25GB第1份",
        "刻录2026-11-29",
        "郑州市公共资源交易中心",
        "ZB2026_0042_2",
        "http://127.0.0.1:8080/#/projects/ZB2026-0042",
    ] {
        assert!(
            flat.contains(expected),
            "{expected:?} missing from the PDF text:\n{text}"
        );
    }

    let urls = decode_qr(&decode_png(&face.png));
    assert_eq!(urls, ["http://127.0.0.1:8080/#/projects/ZB2026-0042"]);
    // What the printer gets is the PDF: its QR code, rasterised by poppler, decodes the same.
    assert_eq!(
        decode_qr(&decode_png(&pdf_to_png(&face.pdf))),
        ["http://127.0.0.1:8080/#/projects/ZB2026-0042"]
    );
}

/// The PDF rasterised at 300 dpi by poppler's `pdftoppm`.
fn pdf_to_png(pdf: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("face.pdf"), pdf).unwrap();
    let status = Command::new("pdftoppm")
        .args(["-r", "300", "-png", "-singlefile"])
        .arg(dir.path().join("face.pdf"))
        .arg(dir.path().join("page"))
        .status()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(status.success());
    std::fs::read(dir.path().join("page.png")).unwrap()
}

#[test]
fn the_qr_code_follows_the_configured_base_url_and_encodes_the_number() {
    let config = witness_controller::config::parse_config(
        "[labels]\nbase_url = \"https://archive.example.cn:8443/\"\n",
    )
    .unwrap();
    let labels = LabelSettings::from_config(&config).unwrap();
    let mut f = fields("项目");
    f.catalog_url = labels.catalog_url("豫 2026/7#1");
    let face = labels::render(&labels, "standard", &f).unwrap();
    assert_eq!(
        decode_qr(&decode_png(&face.png)),
        ["https://archive.example.cn:8443/#/projects/%E8%B1%AB%202026%2F7%231"]
    );
}

#[test]
fn a_sixty_character_chinese_name_is_set_whole_inside_the_printable_ring() {
    assert_eq!(LONG_NAME.chars().count(), 60);
    let face = render("standard", &fields(LONG_NAME));
    let layout = &face.layout;

    // Whole: the name's block holds every character, in order, over several lines.
    let block = layout
        .blocks
        .iter()
        .find(|b| b.text == LONG_NAME)
        .expect("the name block");
    assert!(block.lines >= 2, "a 60-character name wraps: {block:?}");
    assert!(block.size_pt >= 6.0);
    let set: String = layout
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .concat();
    assert!(set.contains(LONG_NAME), "the name is not set whole: {set}");

    // Geometry: every glyph's outline box lies inside the ring.
    let (inner, outer) = layout.ring_mm;
    let mut inked = 0;
    for line in &layout.lines {
        for glyph in &line.glyphs {
            let Some(r) = glyph.ink else { continue };
            inked += 1;
            for (x, y) in [(r.x0, r.y0), (r.x1, r.y0), (r.x0, r.y1), (r.x1, r.y1)] {
                assert!(
                    x.hypot(y) <= outer,
                    "{:?} reaches {} mm",
                    glyph.ch,
                    x.hypot(y)
                );
            }
            let nx = 0f32.clamp(r.x0, r.x1);
            let ny = 0f32.clamp(r.y0, r.y1);
            assert!(nx.hypot(ny) >= inner, "{:?} enters the hub ring", glyph.ch);
        }
    }
    assert!(inked > 100, "only {inked} glyphs were set");

    // Pixels: nothing is drawn outside the ring (one pixel of anti-aliasing allowed), and the
    // ring does carry ink.
    let pixmap = decode_png(&face.png);
    assert_eq!(pixmap.width(), 1417, "120 mm at 300 dpi");
    let px_per_mm = pixmap.width() as f32 / layout.diameter_mm;
    let centre = pixmap.width() as f32 / 2.0;
    let (mut outside_ink, mut inside_ink) = (0, 0);
    for (i, p) in pixmap.pixels().iter().enumerate() {
        let x = (i % pixmap.width() as usize) as f32 + 0.5 - centre;
        let y = (i / pixmap.width() as usize) as f32 + 0.5 - centre;
        let r_mm = x.hypot(y) / px_per_mm;
        let p = p.demultiply();
        let ink = p.alpha() > 0 && (p.red() < 200 || p.green() < 200 || p.blue() < 200);
        if r_mm > outer + 1.0 / px_per_mm || r_mm < inner - 1.0 / px_per_mm {
            if p.alpha() != 0 || ink {
                outside_ink += 1;
            }
        } else if ink {
            inside_ink += 1;
        }
    }
    assert_eq!(outside_ink, 0, "pixels drawn outside the printable ring");
    assert!(inside_ink > 20_000, "only {inside_ink} inked pixels");
}

#[test]
fn the_reject_face_says_reject_with_the_number_and_the_reason() {
    let mut f = fields("某某项目");
    f.reject_reason = "校验失败：文件 3 的 SM3 不符".into();
    let face = render("reject", &f);
    let flat = squeeze(&pdf_text(&face.pdf));
    for expected in [
        "REJECT",
        "废盘",
        "ZB2026-0042",
        "原因：校验失败：文件3的SM3不符",
    ] {
        assert!(flat.contains(expected), "{expected:?} missing: {flat}");
    }
    assert!(
        decode_qr(&decode_png(&face.png)).is_empty(),
        "a reject face has no QR code"
    );
}

#[test]
fn names_too_long_to_fit_and_bad_templates_are_refused_with_the_reason() {
    // 500 characters cannot fit even at the 6 pt floor: an error, never a clipped name.
    let huge: String = LONG_NAME.chars().cycle().take(500).collect();
    let e = labels::render(&settings(), "standard", &fields(&huge)).unwrap_err();
    assert!(
        e.message.contains("在最小字号 6 pt 下也放不进") && e.message.contains("500 个字"),
        "{e}"
    );

    let e = labels::render(&settings(), "no-such-face", &fields("x")).unwrap_err();
    assert!(
        e.message.contains("盘面模板 \"no-such-face\" 不存在"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let standard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware/labels/standard.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("typo.toml"),
        standard.replace("{burn_date}", "{burn_day}"),
    )
    .unwrap();
    let mut custom = settings();
    custom.template_dir = Some(dir.path().to_path_buf());
    let e = labels::render(&custom, "typo", &fields("x")).unwrap_err();
    assert!(e.message.contains("未知的合并字段 {burn_day}"), "{e}");

    // A box narrower than one character at the smallest size: refused, not overflowing.
    std::fs::write(
        dir.path().join("narrow.toml"),
        standard.replacen("width_mm = 74.0", "width_mm = 1.5", 1),
    )
    .unwrap();
    let e = labels::render(&custom, "narrow", &fields("郑州")).unwrap_err();
    assert!(e.message.contains("1.5 × 28 mm"), "{e}");

    // A character the font lacks is named, not printed as an empty box.
    let e = labels::render(&settings(), "standard", &fields("项目\u{1F4BF}")).unwrap_err();
    assert!(e.message.contains("U+1F4BF"), "{e}");

    // A missing font says which package to install.
    custom.template_dir = None;
    custom.font = dir.path().join("missing.ttc");
    let e = labels::render(&custom, "standard", &fields("x")).unwrap_err();
    assert!(e.message.contains("fonts-wqy-zenhei"), "{e}");
}

#[tokio::test]
async fn the_daemon_previews_prints_and_reprints_a_project_face() {
    let dir = tempfile::tempdir().unwrap();
    let tray = dir.path().join("tray");
    // Nothing listens on this port: the IPP printer is listed as unreachable, not dropped.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = 8388608\n\
             [copies]\noptical = 1\ndisk = 0\n\
             [[printers]]\nname = \"tray\"\nkind = \"folder\"\npath = \"{}\"\n\
             [[printers]]\nname = \"pp100\"\nkind = \"ipp\"\nuri = \"ipp://127.0.0.1:{closed_port}/printers/PP-100\"\n",
            tray.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&dir.path().join("var"), Some(&config))
        .await
        .unwrap();
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: "ZB2026-0042".into(),
            name: LONG_NAME.into(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".into(),
        })
        .await
        .unwrap();

    let png = client
        .get_bytes("/api/projects/ZB2026-0042/label-preview")
        .await
        .unwrap();
    assert_eq!(
        decode_qr(&decode_png(&png)),
        ["http://127.0.0.1:8080/#/projects/ZB2026-0042"]
    );
    let pdf = client
        .get_bytes("/api/projects/ZB2026-0042/label-preview?format=pdf")
        .await
        .unwrap();
    let flat = squeeze(&pdf_text(&pdf));
    assert!(
        flat.contains(LONG_NAME) && flat.contains("开标2026-03-1809:30"),
        "{flat}"
    );
    assert!(flat.contains("第1/1张"), "{flat}");

    for (path, expected) in [
        (
            "/api/projects/ZB2026-0042/label-preview?disc=2",
            "第 2 张不存在",
        ),
        (
            "/api/projects/ZB2026-0042/label-preview?format=gif",
            "只能是 png 或 pdf",
        ),
        ("/api/projects/NOPE/label-preview", "不存在"),
    ] {
        let e = client.get_bytes(path).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{path}: {e}");
    }

    // Without credentials the guard refuses the preview like every other route.
    let anonymous = reqwest::get(format!(
        "{}/api/projects/ZB2026-0042/label-preview",
        daemon.url
    ))
    .await
    .unwrap();
    assert_eq!(anonymous.status(), 401);

    let printers: Vec<PrinterInfo> = client.get_json("/api/printers").await.unwrap();
    assert_eq!(printers.len(), 2);
    assert_eq!(
        (printers[0].name.as_str(), printers[0].state.as_str()),
        ("tray", "idle")
    );
    assert_eq!(
        (printers[1].name.as_str(), printers[1].kind.as_str()),
        ("pp100", "ipp")
    );
    assert_eq!(printers[1].state, "unreachable", "{:?}", printers[1]);

    // A real backup onto the virtual drive, then a reprint of the disc's face through the API.
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    std::fs::write(sources.join("评标报告.txt"), "评标报告正文".repeat(1000)).unwrap();
    client
        .add_sources("ZB2026-0042", vec![sources.display().to_string()])
        .await
        .unwrap();
    let job = client.backup("ZB2026-0042").await.unwrap();
    let job = witness_controller::cli::wait(&client, job.id)
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{}", daemon.log_text());
    let disc = client
        .discs()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.status == DiscStatus::Verified)
        .expect("a verified disc");
    // With no robot the face was queued on the printer as soon as the disc was verified.
    assert!(
        tray.join(format!("disc-{}.pdf", disc.id)).is_file(),
        "the verified disc's face was printed without being asked"
    );
    let done: LabelPrintResult = client
        .post_json(&format!("/api/discs/{}/print", disc.id))
        .await
        .unwrap();
    assert_eq!(done.printer, "tray");
    assert!(!done.rejected);
    let pdf = std::fs::read(tray.join(format!("disc-{}.pdf", disc.id))).unwrap();
    let flat = squeeze(&pdf_text(&pdf));
    assert!(
        flat.contains(LONG_NAME) && flat.contains(&squeeze(&disc.volume_id)),
        "{flat}"
    );
    // The disc's own face (GET) is what was printed.
    let png = client
        .get_bytes(&format!("/api/discs/{}/label", disc.id))
        .await
        .unwrap();
    assert_eq!(
        decode_qr(&decode_png(&png)),
        ["http://127.0.0.1:8080/#/projects/ZB2026-0042"]
    );
    // The same through the CLI: the preview as a file, a reprint, the printers.
    let out = dir.path().join("face.pdf");
    let (ok, stdout, stderr) = daemon.cli(&[
        "label",
        "preview",
        "--project",
        "ZB2026-0042",
        "--pdf",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(squeeze(&pdf_text(&std::fs::read(&out).unwrap())).contains(LONG_NAME));
    let (ok, stdout, stderr) = daemon.cli(&["label", "print", "--disc", &disc.id.to_string()]);
    assert!(
        ok && stdout.contains("已发送到打印机 tray"),
        "{stdout}{stderr}"
    );
    let (ok, stdout, _) = daemon.cli(&["label", "printers"]);
    assert!(
        ok && stdout.contains("pp100") && stdout.contains("unreachable"),
        "{stdout}"
    );
    let (ok, _, stderr) = daemon.cli(&["label", "print", "--disc", "999"]);
    assert!(!ok && stderr.contains("光盘 999 不存在"), "{stderr}");

    let e = client
        .post_json::<LabelPrintResult>("/api/discs/999/print")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("光盘 999 不存在"), "{e}");
}

/// `print_disc_face`, the function the burn flow calls after each disc: it reads the disc, its
/// project and set from the catalog, prints on the configured folder printer and records it.
#[tokio::test]
async fn print_disc_face_prints_the_catalog_disc_and_records_the_print() {
    use witness_controller::clock::SystemClock;
    use witness_controller::error::ErrorKind;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var");
    let tray = dir.path().join("tray");
    let config = witness_controller::config::parse_config(&format!(
        "[[printers]]\nname = \"tray\"\nkind = \"folder\"\npath = \"{}\"\n",
        tray.display()
    ))
    .unwrap();
    let settings = witness_controller::config::resolve(config, Some(data.clone()), None).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let pool = witness_controller::db::open(&data).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    witness_controller::catalog::create_project(
        &pool,
        &NewProject {
            number: "ZB2026-0042".into(),
            name: LONG_NAME.into(),
            category: Category::Construction,
            opening: "2026-03-18T09:30:00+08:00".into(),
        },
        now,
    )
    .await
    .unwrap();
    // A job with one optical disc (2 of 3) and one disk copy, as the burn flow leaves them.
    sqlx::query(
        "INSERT INTO jobs (id, project_id, status, step, medium, capacity, part_size, copies_optical,
            copies_disk, package_uuid, created_at, updated_at)
         SELECT 1, id, 'running', 'verify', 'bd-r', 1, 1, 1, 1, 'u', 't', 't' FROM projects",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (id, kind) in [(7, "optical"), (8, "disk")] {
        sqlx::query(
            "INSERT INTO discs (id, job_id, kind, set_index, set_count, copy_index, medium, target,
                location, volume_id, status, created_at)
             VALUES (?, 1, ?, 2, 3, 1, 'bd-r', 'bd1', '/x', 'ZB2026_0042_2', 'verified',
                '2026-11-29T10:00:00+08:00')",
        )
        .bind(id)
        .bind(kind)
        .execute(&pool)
        .await
        .unwrap();
    }

    let print = labels::print_disc_face(&pool, &settings, &SystemClock, 7, None)
        .await
        .unwrap();
    assert_eq!(print.printer, "tray");
    assert_eq!(Path::new(&print.reference), tray.join("disc-7.pdf"));
    let flat = squeeze(&pdf_text(&std::fs::read(tray.join("disc-7.pdf")).unwrap()));
    for expected in [
        LONG_NAME,
        "第2/3张",
        "刻录2026-11-29",
        "光盘BD-R",
        "ZB2026_0042_2",
    ] {
        assert!(flat.contains(expected), "{expected:?} missing: {flat}");
    }
    let png = std::fs::read(tray.join("disc-7.png")).unwrap();
    assert_eq!(
        decode_qr(&decode_png(&png)),
        ["http://127.0.0.1:8080/#/projects/ZB2026-0042"]
    );

    labels::print_disc_face(
        &pool,
        &settings,
        &SystemClock,
        7,
        Some("写入失败 (write failed)"),
    )
    .await
    .unwrap();
    let flat = squeeze(&pdf_text(
        &std::fs::read(tray.join("disc-7-reject.pdf")).unwrap(),
    ));
    assert!(
        flat.contains("REJECT") && flat.contains("写入失败"),
        "{flat}"
    );

    // (disc_id, template, rejected, printer)
    type PrintRow = (i64, String, Option<String>, String);
    let rows: Vec<PrintRow> =
        sqlx::query_as("SELECT disc_id, template, rejected, printer FROM label_prints ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (7, "standard".into(), None, "tray".into()),
            (
                7,
                "reject".into(),
                Some("写入失败 (write failed)".into()),
                "tray".into()
            )
        ]
    );

    let e = labels::print_disc_face(&pool, &settings, &SystemClock, 8, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::FailedPrecondition, "{e}");
    let e = labels::print_disc_face(&pool, &settings, &SystemClock, 99, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[test]
fn bad_label_and_printer_settings_stop_the_start() {
    let data = Path::new("/tmp/unused");
    for (text, expected) in [
        ("[labels]\ntemplate = \"nope\"\n", "不存在"),
        ("[labels]\nbase_url = \"ftp://x\"\n", "base_url"),
        ("[[printers]]\nname = \"p\"\nkind = \"ipp\"\n", "需要 uri"),
        ("[[printers]]\nname = \"p\"\nkind = \"ipp\"\nuri = \"ipps://h/p\"\n", "not supported yet"),
        (
            "[[printers]]\nname = \"p\"\nkind = \"folder\"\n[[printers]]\nname = \"p\"\nkind = \"folder\"\n",
            "重复",
        ),
    ] {
        let config = witness_controller::config::parse_config(text).unwrap();
        let e = witness_controller::config::resolve(config, Some(data.to_path_buf()), None)
            .unwrap_err();
        assert!(e.message.contains(expected), "{text}: {e}");
    }
}
