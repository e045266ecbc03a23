//! Clearing (清标) end to end: generated GB 50500-2013 workbooks read back, bad workbooks
//! refused with the sheet, row and column named, the `witness clearing run` CLI, and the JSON
//! Schema of the wire format kept up to date. The data-driven check cases are unit tests in
//! `controller/src/clearing/tests.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::Reader;
use rust_xlsxwriter::{Format, Workbook};
use utoipa::OpenApi;
use witness_controller::clearing::{self, fixtures, xlsx};
use witness_schemas::clearing::{Bill, ClearingConfig, ClearingResult, FindingKind, Num};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

fn tender_and_bids() -> (Bill, Vec<Bill>) {
    let tender = fixtures::small_tender();
    let bids = vec![
        fixtures::priced_bid(&tender, "甲", 1),
        fixtures::priced_bid(&tender, "乙", 2),
    ];
    (tender, bids)
}

#[test]
fn generated_workbooks_read_back_clean() {
    let (tender, bids) = tender_and_bids();
    let dir = tempfile::tempdir().expect("tempdir");
    let tender_path = write(
        dir.path(),
        "tender.xlsx",
        &fixtures::write_xlsx(&tender, true).expect("xlsx"),
    );
    let read_tender = xlsx::read_bill(&tender_path, "招标控制价").expect("read tender");
    let mut read_bids = Vec::new();
    for bid in &bids {
        let path = write(
            dir.path(),
            &format!("{}.xlsx", bid.bidder),
            &fixtures::write_xlsx(bid, false).expect("xlsx"),
        );
        read_bids.push(xlsx::read_bill(&path, &bid.bidder).expect("read bid"));
    }
    // Every value survives the trip through Excel's binary floats.
    let values = |bill: &Bill| -> Vec<String> {
        bill.units[0]
            .items
            .items
            .iter()
            .map(|i| {
                format!(
                    "{} {} {} {:?} {:?}",
                    i.code,
                    i.unit,
                    i.quantity.value.normalize(),
                    i.unit_price.as_ref().map(|n| n.value.normalize()),
                    i.total.as_ref().map(|n| n.value.normalize())
                )
            })
            .collect()
    };
    assert_eq!(values(&read_tender), values(&tender));
    assert_eq!(read_tender.units[0].name, "某小学教学楼-土建");
    assert_eq!(read_tender.units[0].items.subtotals.len(), 3);
    assert_eq!(read_tender.units[0].analyses.len(), 6);
    assert_eq!(read_tender.units[0].fees.lines.len(), 4);
    assert_eq!(values(&read_bids[0]), values(&bids[0]));
    let result = clearing::run(&read_tender, &read_bids, &ClearingConfig::default()).expect("run");
    assert_eq!(result.findings, vec![]);
}

#[test]
fn several_unit_projects_in_one_workbook() {
    let tender = fixtures::tender(3, 40);
    let bid = fixtures::priced_bid(&tender, "甲", 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = write(
        dir.path(),
        "t.xlsx",
        &fixtures::write_xlsx(&tender, true).expect("xlsx"),
    );
    let b = write(
        dir.path(),
        "b.xlsx",
        &fixtures::write_xlsx(&bid, false).expect("xlsx"),
    );
    let tender = xlsx::read_bill(&t, "招标控制价").expect("tender");
    let bid = xlsx::read_bill(&b, "甲").expect("bid");
    let names: Vec<&str> = bid.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["单位工程1", "单位工程2", "单位工程3"]);
    let result = clearing::run(&tender, &[bid], &ClearingConfig::default()).expect("run");
    assert_eq!(result.findings, vec![]);
    assert_eq!(result.analyses.price_comparison[0].units.len(), 3);
}

#[test]
fn a_finding_in_a_workbook_names_sheet_and_row() {
    let (tender, mut bids) = tender_and_bids();
    let item = &mut bids[0].units[0].items.items[3];
    assert_eq!(item.code, "010502001001");
    item.total = Some(Num::parse("21000.00").expect("num"));
    fixtures::recompute_sums(&mut bids[0]);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = write(
        dir.path(),
        "t.xlsx",
        &fixtures::write_xlsx(&tender, true).expect("xlsx"),
    );
    let b = write(
        dir.path(),
        "b.xlsx",
        &fixtures::write_xlsx(&bids[0], false).expect("xlsx"),
    );
    let tender = xlsx::read_bill(&t, "招标控制价").expect("tender");
    let bid = xlsx::read_bill(&b, "甲").expect("bid");
    let result = clearing::run(&tender, &[bid], &ClearingConfig::default()).expect("run");
    let found: Vec<(FindingKind, &str, &str)> = result
        .findings
        .iter()
        .map(|f| (f.kind, f.item_code.as_str(), f.location.as_str()))
        .collect();
    // Title, 工程名称, two header rows, a heading, two items, 小计, a heading, then the item.
    assert_eq!(
        found,
        [(
            FindingKind::LineTotalMismatch,
            "010502001001",
            "工作表「分部分项工程和单价措施项目清单与计价表」第 11 行"
        )]
    );
}

/// A workbook of hand-written sheets: cells that read as numbers are written as numbers.
fn workbook(sheets: &[(&str, Vec<Vec<&str>>)], merge: Option<(u32, u16, u32, u16)>) -> Vec<u8> {
    let mut wb = Workbook::new();
    for (i, (name, rows)) in sheets.iter().enumerate() {
        let sheet = wb.add_worksheet().set_name(*name).expect("name");
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if cell.is_empty() {
                    continue;
                }
                match cell.parse::<f64>() {
                    Ok(f) => sheet.write_number(r as u32, c as u16, f),
                    Err(_) => sheet.write_string(r as u32, c as u16, *cell),
                }
                .expect("cell");
            }
        }
        if let (0, Some((r1, c1, r2, c2))) = (i, merge) {
            sheet
                .merge_range(r1, c1, r2, c2, "", &Format::new())
                .expect("merge");
        }
    }
    wb.save_to_buffer().expect("save")
}

const ITEMS: &str = "分部分项工程和单价措施项目清单与计价表";
const SUMMARY: &str = "单位工程投标报价汇总表";

fn header() -> Vec<&'static str> {
    vec![
        "序号",
        "项目编码",
        "项目名称",
        "项目特征描述",
        "计量单位",
        "工程量",
        "综合单价",
        "合价",
        "其中：暂估价",
    ]
}

fn item_row(code: &'static str, quantity: &'static str) -> Vec<&'static str> {
    vec!["1", code, "平整场地", "", "m2", quantity, "2.5", "2500", ""]
}

fn summary() -> (&'static str, Vec<Vec<&'static str>>) {
    (
        SUMMARY,
        vec![
            vec!["序号", "汇总内容", "金额（元）"],
            vec!["1", "分部分项工程", "2500"],
        ],
    )
}

fn read_error(bytes: Vec<u8>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "bad.xlsx", &bytes);
    let error = xlsx::read_bill(&path, "甲").expect_err("must be refused");
    // Messages start with the path; the rest is what the person fixing the file reads.
    let text = error.to_string();
    text.split_once(": ")
        .map_or(text.clone(), |(_, rest)| rest.to_string())
}

#[test]
fn bad_workbooks_are_refused_with_sheet_row_and_column() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            workbook(&[(ITEMS, vec![header(), item_row("010101001001", "1000")])], None),
            "缺少工作表「单位工程投标报价汇总表」（工作表按名称识别；现有工作表：分部分项工程和单价措施项目清单与计价表）",
        ),
        (
            workbook(
                &[
                    (
                        ITEMS,
                        vec![
                            header()
                                .into_iter()
                                .map(|h| if h == "综合单价" { "单价" } else { h })
                                .collect(),
                            item_row("010101001001", "1000"),
                        ],
                    ),
                    summary(),
                ],
                None,
            ),
            "工作表「分部分项工程和单价措施项目清单与计价表」前 12 行中找不到列「综合单价」（列名被改动或缺少表头）",
        ),
        (
            workbook(
                &[
                    (
                        ITEMS,
                        vec![
                            header(),
                            item_row("010101001001", "1000"),
                            item_row("010101002001", "20"),
                        ],
                    ),
                    summary(),
                ],
                Some((1, 6, 2, 6)),
            ),
            "工作表「分部分项工程和单价措施项目清单与计价表」单元格 G2:G3 是合并单元格：数据区不允许合并单元格，请取消合并并在每一行填写",
        ),
        (
            workbook(
                &[(ITEMS, vec![header(), item_row("010101001001", "约1000")]), summary()],
                None,
            ),
            "工作表「分部分项工程和单价措施项目清单与计价表」第 2 行 F 列（工程量）：「约1000」不是数字（数字单元格中有文字）",
        ),
        (
            workbook(
                &[
                    (
                        ITEMS,
                        vec![
                            header(),
                            item_row("010101001001", "1000"),
                            item_row("010101001001", "20"),
                        ],
                    ),
                    summary(),
                ],
                None,
            ),
            "工作表「分部分项工程和单价措施项目清单与计价表」第 3 行 B 列（项目编码）：项目编码 010101001001 重复（第 2 行已有）",
        ),
        (
            workbook(&[(ITEMS, vec![header()]), summary()], None),
            "「甲」的清单没有任何项目（空的投标文件或工作表）",
        ),
        (
            b"PK\x03\x04 this is not really a zip".to_vec(),
            "不是有效的 .xlsx 工作簿",
        ),
    ];
    for (bytes, expected) in cases {
        let message = read_error(bytes);
        assert!(
            message.starts_with(expected),
            "expected {expected:?}\n     got {message:?}"
        );
    }
}

#[test]
fn old_xls_and_oversized_files_are_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xls = write(dir.path(), "old.xls", b"\xd0\xcf\x11\xe0");
    let message = xlsx::read_bill(&xls, "甲").expect_err("xls").to_string();
    assert!(message.contains("not supported yet"), "{message}");
    let huge = dir.path().join("huge.xlsx");
    let file = std::fs::File::create(&huge).expect("create");
    // A sparse file: the size check must refuse it without reading it.
    file.set_len(xlsx::MAX_WORKBOOK_BYTES + 1).expect("set_len");
    let message = xlsx::read_bill(&huge, "甲").expect_err("huge").to_string();
    assert!(message.contains("超过清标允许的"), "{message}");
}

fn witness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_witness"))
        .args(args)
        .output()
        .expect("run witness")
}

#[test]
fn cli_runs_offline_and_writes_reports() {
    let (tender, mut bids) = tender_and_bids();
    bids[1].units[0].items.items[0].total = Some(Num::parse("250.00").expect("num"));
    fixtures::recompute_sums(&mut bids[1]);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = write(
        dir.path(),
        "招标.xlsx",
        &fixtures::write_xlsx(&tender, true).expect("x"),
    );
    let a = write(
        dir.path(),
        "甲.xlsx",
        &fixtures::write_xlsx(&bids[0], false).expect("x"),
    );
    // The second bid comes as JSON, the format other systems send.
    let b = write(
        dir.path(),
        "乙.json",
        serde_json::to_string(&bids[1]).expect("json").as_bytes(),
    );
    let report = dir.path().join("清标报告.xlsx");
    let html = dir.path().join("清标报告.html");
    let bid_a = format!("甲={}", a.display());
    let bid_b = format!("乙={}", b.display());
    let t = t.display().to_string();
    let out = witness(&[
        "clearing",
        "run",
        "--tender",
        &t,
        "--bid",
        &bid_a,
        "--bid",
        &bid_b,
        "--json",
        "--report",
        &report.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: ClearingResult = serde_json::from_slice(&out.stdout).expect("json output");
    let kinds: Vec<(FindingKind, &str)> = result
        .findings
        .iter()
        .map(|f| (f.kind, f.bidder.as_str()))
        .collect();
    assert_eq!(kinds, [(FindingKind::LineTotalMismatch, "乙")]);
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&report).expect("report");
    assert_eq!(
        workbook.sheet_names(),
        [
            "投标报价对比",
            "问题清单",
            "费用构成",
            "清单单价对比",
            "措施项目对比",
            "主要材料价格"
        ]
    );
    let findings = workbook.worksheet_range("问题清单").expect("sheet");
    assert_eq!(findings.height(), 2);

    let out = witness(&[
        "clearing",
        "run",
        "--tender",
        &t,
        "--bid",
        &bid_a,
        "--report",
        &html.display().to_string(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("问题 0 处"), "{text}");
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("<h1>清标报告</h1>"));

    let out = witness(&[
        "clearing",
        "run",
        "--tender",
        "/nonexistent.xlsx",
        "--bid",
        &bid_a,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.xlsx"));
}

/// `schemas/json/clearing.schema.json` is generated from the Rust types; this test fails when
/// it is out of date and rewrites it when `WITNESS_UPDATE_SCHEMA=1`.
#[test]
fn json_schema_is_up_to_date() {
    let doc = clearing::web::ClearingApiDoc::openapi();
    let components = serde_json::to_value(doc.components.expect("components")).expect("json");
    let defs = components["schemas"].clone();
    let text = serde_json::to_string_pretty(&serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://witness.local/schemas/clearing.schema.json",
        "title": "见证 清标输入 (ClearingInput): 招标工程量清单与各投标报价",
        "$ref": "#/$defs/ClearingInput",
        "$defs": defs,
    }))
    .expect("json")
    .replace("#/components/schemas/", "#/$defs/")
        + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/json/clearing.schema.json");
    if std::env::var("WITNESS_UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &text).expect("write schema");
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == text,
        "{} is out of date: run `WITNESS_UPDATE_SCHEMA=1 cargo test -p witness-controller --test clearing json_schema`",
        path.display()
    );
}

/// A `witness serve` started for one test and killed (by its own pid) when dropped.
struct Server {
    child: std::process::Child,
    url: String,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(data: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(data.with_extension("log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_witness"))
        .args(["serve", "--listen", &listen, "--data"])
        .arg(data)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start witness serve");
    // Owned by `Server` at once, so a failed start still kills it (in `Drop`).
    let mut server = Server {
        child,
        url: format!("http://{listen}"),
        token: String::new(),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let up = reqwest::get(format!("{}/api/openapi.json", server.url))
            .await
            .is_ok();
        let token = witness_controller::auth::accounts::token_from_credential_file(data);
        if let (true, Some(token)) = (up, token) {
            server.token = token;
            return server;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "daemon did not start: {}",
            std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn web_run_stores_the_reports_with_the_project() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let server = start_server(&data).await;
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", server.token);
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", server.url))
            .header("Authorization", &auth)
    };

    let response = call(reqwest::Method::POST, "/api/projects")
        .json(&serde_json::json!({
            "number": "QB-2026-007", "name": "某小学教学楼施工", "category": "construction",
            "opening": "2026-03-18T09:30:00+08:00"
        }))
        .send()
        .await
        .expect("create project");
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );

    let (tender, mut bids) = tender_and_bids();
    bids[0].units[0].others.lines[0].amount = Some(Num::parse("9000").expect("num"));
    fixtures::recompute(&mut bids[0]);
    let uploads = [
        (
            "清标/招标/招标控制价.xlsx",
            fixtures::write_xlsx(&tender, true).expect("x"),
        ),
        (
            "清标/投标/甲.xlsx",
            fixtures::write_xlsx(&bids[0], false).expect("x"),
        ),
        (
            "清标/投标/乙.xlsx",
            fixtures::write_xlsx(&bids[1], false).expect("x"),
        ),
    ];
    for (path, bytes) in uploads {
        let encoded: Vec<String> = path
            .split('/')
            .map(|s| s.bytes().map(|b| format!("%{b:02X}")).collect())
            .collect();
        let response = call(
            reqwest::Method::PUT,
            &format!("/api/projects/QB-2026-007/files/{}", encoded.join("/")),
        )
        .body(bytes)
        .send()
        .await
        .expect("upload");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    let response = call(reqwest::Method::POST, "/api/projects/QB-2026-007/clearing")
        .json(&serde_json::json!({
            "tender": "清标/招标/招标控制价.xlsx",
            "bids": [
                {"bidder": "甲", "path": "清标/投标/甲.xlsx"},
                {"bidder": "乙", "path": "清标/投标/乙.xlsx"}
            ]
        }))
        .send()
        .await
        .expect("run");
    assert_eq!(response.status(), 201);
    let run: witness_schemas::clearing::ClearingRun = response.json().await.expect("json");
    let kinds: Vec<(FindingKind, &str)> = run
        .result
        .findings
        .iter()
        .map(|f| (f.kind, f.bidder.as_str()))
        .collect();
    assert_eq!(kinds, [(FindingKind::ProvisionalSumChanged, "甲")]);
    assert_eq!(run.reports.len(), 2);
    assert!(run.reports[0].starts_with("清标报告/清标报告-") && run.reports[0].ends_with(".xlsx"));

    // The reports are project files now, so the next backup archives them.
    let detail: serde_json::Value = call(reqwest::Method::GET, "/api/projects/QB-2026-007")
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("json");
    let text = detail.to_string();
    for report in &run.reports {
        assert!(text.contains(report.as_str()), "{report} not in {text}");
    }
    let file = run.reports[0].rsplit('/').next().expect("name");
    let encoded: String = file.bytes().map(|b| format!("%{b:02X}")).collect();
    let response = call(
        reqwest::Method::GET,
        &format!("/api/projects/QB-2026-007/clearing/reports/{encoded}"),
    )
    .send()
    .await
    .expect("report");
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("bytes");
    let mut report = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    assert!(report.worksheet_range("问题清单").is_ok());

    // Other systems send bills as JSON and get the result back without storing anything.
    let input = witness_schemas::clearing::ClearingInput {
        tender: tender.clone(),
        bids: vec![bids[1].clone()],
        config: ClearingConfig::default(),
    };
    let response = call(reqwest::Method::POST, "/api/clearing/run")
        .json(&input)
        .send()
        .await
        .expect("json run");
    assert_eq!(response.status(), 200);
    let result: ClearingResult = response.json().await.expect("json");
    assert_eq!(result.findings, vec![]);

    let response = call(reqwest::Method::POST, "/api/projects/QB-2026-007/clearing")
        .json(&serde_json::json!({"tender": "清标/招标/招标控制价.xlsx", "bids": [{"bidder": "丙", "path": "清标/投标/丙.xlsx"}]}))
        .send()
        .await
        .expect("missing bid");
    assert_eq!(response.status(), 404);

    let openapi = call(reqwest::Method::GET, "/api/openapi.json")
        .send()
        .await
        .expect("openapi")
        .text()
        .await
        .expect("text");
    assert!(openapi.contains("/api/projects/{number}/clearing"));
    assert!(openapi.contains("ClearingInput"));

    // The page and its script are served, and the site header (drawn by nav.js on every page)
    // links to the page.
    for (path, needle) in [
        ("/clearing.html", "/clearing.js"),
        (
            "/clearing.js",
            "/api/projects/${encodeURIComponent(number)}/clearing",
        ),
        ("/", "/nav.js"),
        ("/clearing.html", "/nav.js"),
        ("/nav.js", "'/clearing.html', '清标'"),
    ] {
        let text = reqwest::get(format!("{}{path}", server.url))
            .await
            .expect("page")
            .text()
            .await
            .expect("text");
        assert!(text.contains(needle), "{path} lacks {needle}");
    }
}
