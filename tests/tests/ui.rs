//! The web UI in headless Chromium against a real daemon: the project list, a file upload,
//! 一键备份 until every copy is verified, the add-project form, and errors in the alert banner.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use witness_controller::cli::encode;
use witness_schemas::api::ProjectDetail;
use witness_tests::browser::Browser;
use witness_tests::daemon::Daemon;

const NUMBER: &str = "LKGC-2026-0318";
const NAME: &str = "兰考县城区道路改造工程施工招标";

/// A daemon with one small virtual BD-R drive and the default hard-disk copy: each backup makes
/// one disc and one disk copy.
async fn start_daemon(root: &Path) -> Result<Daemon> {
    let config = root.join("witness.toml");
    std::fs::write(
        &config,
        "[[drives]]\nname = \"bd1\"\nkind = \"virtual\"\nmedia = \"bd-r\"\ncapacity_bytes = 8388608\n\
         [copies]\noptical = 1\ndisk = 1\n",
    )?;
    Daemon::start(&root.join("data"), Some(&config)).await
}

/// An HTTP client with the first admin's API token. Build it before logging in through the UI:
/// changing the one-time password removes the credential file the token is read from.
fn authorized_client(daemon: &Daemon) -> Result<reqwest::Client> {
    let token = daemon
        .admin_token()
        .context("the daemon wrote no admin token")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// Sets the value of the element with `id`.
fn set_value(id: &str, value: &str) -> String {
    format!(
        "document.getElementById({}).value = {};",
        serde_json::to_string(id).expect("a string"),
        serde_json::to_string(value).expect("a string")
    )
}

/// Opens the UI and logs in as the first admin the way a person does: the login form, then the
/// forced change of the one-time password; returns once the project list is shown.
async fn log_in(browser: &Browser, daemon: &Daemon) -> Result<()> {
    let password = daemon
        .admin_password()
        .context("the daemon wrote no one-time password")?;
    browser.goto(&format!("{}/#/", daemon.url)).await?;
    browser
        .wait_for(
            "document.getElementById('login-form')",
            Duration::from_secs(15),
        )
        .await?;
    browser
        .eval(
            &[
                set_value("login-username", "admin"),
                set_value("login-password", &password),
            ]
            .concat(),
        )
        .await?;
    browser.click("#login-form button[type=submit]").await?;
    browser
        .wait_for(
            "document.getElementById('password-form')",
            Duration::from_secs(15),
        )
        .await?;
    let fresh = "见证-Witness-2026";
    browser
        .eval(
            &[
                set_value("old-password", &password),
                set_value("new-password", fresh),
                set_value("new-password-again", fresh),
            ]
            .concat(),
        )
        .await?;
    browser.click("#password-form button[type=submit]").await?;
    browser
        .wait_for(
            "document.getElementById('new-project-form')",
            Duration::from_secs(15),
        )
        .await?;
    assert!(browser
        .eval("document.getElementById('whoami').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .contains("admin"));
    Ok(())
}

async fn expect_status(response: reqwest::Response, status: u16) -> Result<Value> {
    let got = response.status().as_u16();
    let text = response.text().await?;
    if got != status {
        bail!("HTTP {got} instead of {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| text.clone())
}

async fn add_project(http: &reqwest::Client, daemon: &Daemon) -> Result<()> {
    let response = http
        .post(format!("{}/api/projects", daemon.url))
        .json(&json!({
            "number": NUMBER,
            "name": NAME,
            "category": "construction",
            "opening": "2026-03-18T09:30:00+08:00",
        }))
        .send()
        .await?;
    expect_status(response, 201).await?;
    Ok(())
}

async fn upload(
    http: &reqwest::Client,
    daemon: &Daemon,
    rel_path: &str,
    bytes: Vec<u8>,
) -> Result<()> {
    let encoded: Vec<String> = rel_path.split('/').map(encode).collect();
    let response = http
        .put(format!(
            "{}/api/projects/{}/files/{}",
            daemon.url,
            encode(NUMBER),
            encoded.join("/")
        ))
        .body(bytes)
        .send()
        .await?;
    expect_status(response, 201).await?;
    Ok(())
}

async fn detail(http: &reqwest::Client, daemon: &Daemon, number: &str) -> Result<ProjectDetail> {
    let response = http
        .get(format!("{}/api/projects/{}", daemon.url, encode(number)))
        .send()
        .await?;
    Ok(serde_json::from_value(expect_status(response, 200).await?)?)
}

fn blob(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 11) ^ seed as usize) as u8)
        .collect()
}

/// The text of the alert banner when it is shown, else "".
const BANNER: &str = "(() => { const b = document.querySelector('[role=alert]'); \
                      return b && !b.hidden ? b.textContent.trim() : ''; })()";

#[tokio::test]
async fn one_click_backup_until_every_copy_is_verified() -> Result<()> {
    let root = tempfile::tempdir()?;
    let daemon = start_daemon(root.path()).await?;
    let http = authorized_client(&daemon)?;
    add_project(&http, &daemon).await?;
    upload(
        &http,
        &daemon,
        "评标报告/评标报告（签字版）.pdf",
        blob(120_000, 1),
    )
    .await?;
    upload(
        &http,
        &daemon,
        "评标录像/第一评标室.mp4",
        blob(1_500_000, 2),
    )
    .await?;

    let browser = Browser::launch().await?;
    log_in(&browser, &daemon).await?;
    // The list shows the project with its Chinese name, category and status.
    let row = format!("document.querySelector('.project-table tr[data-number=\"{NUMBER}\"]')");
    let text = browser
        .wait_for(
            &format!("{row} && {row}.textContent"),
            Duration::from_secs(15),
        )
        .await?;
    let text = text.as_str().unwrap_or_default();
    for expected in [NUMBER, NAME, "工程建设", "2026-03-18 09:30", "未归档"] {
        assert!(
            text.contains(expected),
            "the row {text:?} lacks {expected:?}"
        );
    }
    assert_eq!(
        browser
            .eval(&format!(
                "{row}.querySelector('.project-status').dataset.status"
            ))
            .await?,
        json!("registered")
    );

    // Open the project from the list.
    browser
        .click(&format!(
            ".project-table tr[data-number=\"{NUMBER}\"] .name-cell a"
        ))
        .await?;
    browser
        .wait_for(
            "document.querySelectorAll('.file-table tbody tr[data-file-id]').length === 2",
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(
        browser.eval("location.hash").await?,
        json!(format!("#/projects/{NUMBER}"))
    );
    assert_eq!(
        browser
            .eval("document.querySelector('#project-meta h1').textContent")
            .await?,
        json!(NAME)
    );
    // 盘面预览: the server's 300 dpi PNG of this project's disc face (120 mm = 1417 px).
    browser
        .wait_for(
            "(() => { const i = document.getElementById('label-preview'); \
             return i && i.complete && i.naturalWidth === 1417; })()",
            Duration::from_secs(15),
        )
        .await?;

    // A third file through the upload control, with a Chinese name.
    let files = tempfile::tempdir()?;
    let recording = files.path().join("开标现场录音.mp3");
    std::fs::write(&recording, blob(300_000, 3))?;
    browser.set_files("#upload-input", &[&recording]).await?;
    browser
        .wait_for(
            "document.querySelectorAll('.file-table tbody tr[data-file-id]').length === 3",
            Duration::from_secs(30),
        )
        .await?;
    assert!(browser
        .eval("document.querySelector('.file-table').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .contains("开标现场录音.mp3"));
    assert_eq!(browser.eval(BANNER).await?, json!(""));

    // 一键备份.
    assert_eq!(
        browser
            .eval("document.getElementById('backup-button').textContent")
            .await?,
        json!("一键备份")
    );
    browser.click("#backup-button").await?;
    browser
        .wait_for(
            "document.querySelector('.job-status[data-status]')",
            Duration::from_secs(15),
        )
        .await?;
    let finished = browser
        .wait_for(
            "(() => { const s = document.querySelector('.job-status'); \
             return s && ['succeeded', 'failed'].includes(s.dataset.status) && s.dataset.status; })()",
            Duration::from_secs(90),
        )
        .await?;
    let job_text = browser
        .eval("document.querySelector('#job-list').textContent")
        .await?;
    assert_eq!(
        finished,
        json!("succeeded"),
        "job: {job_text}\nlog:\n{}",
        daemon.log_text()
    );
    // Every copy shows as verified: one disc and one hard-disk copy.
    browser
        .wait_for(
            "document.querySelectorAll('.disc-table .disc-status[data-status=\"verified\"]').length === 2",
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('.disc-table .disc-status').length")
            .await?,
        json!(2)
    );
    // The disc (not the disk copy) offers its face: view and reprint.
    assert_eq!(
        browser
            .eval("document.querySelectorAll('.disc-table .face-cell a').length")
            .await?,
        json!(1)
    );
    assert_eq!(
        browser
            .eval("document.querySelector('.job-copies-count').textContent")
            .await?,
        json!("2 / 2")
    );
    browser
        .wait_for(
            "document.querySelector('#project-meta .project-status').dataset.status === 'archived'",
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(
        browser
            .eval("document.getElementById('backup-button').disabled")
            .await?,
        json!(false)
    );
    assert_eq!(browser.eval(BANNER).await?, json!(""));

    // What the page shows is what the catalog holds.
    let detail = detail(&http, &daemon, NUMBER).await?;
    assert_eq!(detail.files.len(), 3);
    assert_eq!(detail.jobs.len(), 1);
    assert_eq!(
        (
            detail.jobs[0].copies_verified,
            detail.jobs[0].copies_expected
        ),
        (2, 2)
    );

    // The screenshot shows the finished job and its copies.
    browser
        .eval("document.getElementById('job-list').scrollIntoView({ block: 'start' })")
        .await?;
    let shots = tempfile::tempdir()?;
    let shot = shots.path().join("project.png");
    browser.screenshot(&shot).await?;
    let png = std::fs::read(&shot)?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "suspiciously small screenshot: {} bytes",
        png.len()
    );

    // The discs page lists the same copies.
    browser.goto(&format!("{}/#/discs", daemon.url)).await?;
    browser
        .wait_for(
            "document.querySelectorAll('.disc-table .disc-status[data-status=\"verified\"]').length === 2",
            Duration::from_secs(15),
        )
        .await?;

    // The drives page lists the disc printer: with none configured, the folder printer.
    browser.goto(&format!("{}/#/drives", daemon.url)).await?;
    browser
        .wait_for(
            "document.querySelector('.printer-table tr[data-printer=\"folder1\"] .printer-state')",
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(
        browser
            .eval("document.querySelector('.printer-table tr[data-printer=\"folder1\"] .printer-state').textContent")
            .await?,
        json!("空闲")
    );
    Ok(())
}

/// Fills the add-project form and submits it.
async fn submit_form(browser: &Browser, number: &str, name: &str) -> Result<()> {
    browser
        .wait_for(
            "document.getElementById('new-project-form')",
            Duration::from_secs(15),
        )
        .await?;
    browser
        .eval(
            &[
                set_value("new-number", number),
                set_value("new-name", name),
                set_value("new-category", "procurement"),
                set_value("new-opening", "2026-04-01T14:30"),
            ]
            .concat(),
        )
        .await?;
    browser.click("#new-project-submit").await
}

#[tokio::test]
async fn the_form_adds_projects_and_errors_show_in_the_alert_banner() -> Result<()> {
    let root = tempfile::tempdir()?;
    let daemon = start_daemon(root.path()).await?;
    let http = authorized_client(&daemon)?;
    let browser = Browser::launch().await?;
    log_in(&browser, &daemon).await?;

    let number = "ZFCG-2026-0007";
    let name = "兰考县第一高级中学教学设备采购";
    submit_form(&browser, number, name).await?;
    // The new project's page opens.
    browser
        .wait_for(
            &format!(
                "location.hash === {} && document.querySelector('#project-meta h1') \
                 && document.querySelector('#project-meta h1').textContent",
                serde_json::to_string(&format!("#/projects/{number}"))?
            ),
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(browser.eval(BANNER).await?, json!(""));
    let created = detail(&http, &daemon, number).await?.project;
    assert_eq!(created.name, name);
    assert_eq!(created.category.as_str(), "procurement");
    assert_eq!(created.opening, "2026-04-01T14:30:00+08:00");
    assert!(browser
        .eval("document.getElementById('project-meta').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .contains("政府采购"));

    // 一键备份 of a project with no files: refused, and the banner says why.
    browser.click("#backup-button").await?;
    let banner = browser.wait_for(BANNER, Duration::from_secs(15)).await?;
    assert!(
        banner.as_str().unwrap_or_default().contains("没有任何文件"),
        "{banner}"
    );
    assert!(detail(&http, &daemon, number).await?.jobs.is_empty());

    // The same number again: the form stays, the banner names the conflict.
    browser.goto(&format!("{}/#/", daemon.url)).await?;
    browser
        .wait_for(
            &format!("document.querySelector('.project-table tr[data-number=\"{number}\"]')"),
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(browser.eval(BANNER).await?, json!(""));
    submit_form(&browser, number, "重复登记的项目").await?;
    let banner = browser.wait_for(BANNER, Duration::from_secs(15)).await?;
    let banner = banner.as_str().unwrap_or_default();
    assert!(
        banner.contains(number) && banner.contains("已存在"),
        "{banner}"
    );
    assert_eq!(
        browser
            .eval("document.querySelector('[role=alert]').id")
            .await?,
        json!("error-banner")
    );
    assert_eq!(browser.eval("location.hash").await?, json!("#/"));
    // Still one project, with its first name; the submit button is usable again.
    let response = http
        .get(format!("{}/api/projects", daemon.url))
        .send()
        .await?;
    let projects = expect_status(response, 200).await?;
    assert_eq!(projects.as_array().map(Vec::len), Some(1), "{projects}");
    assert_eq!(projects[0]["name"], json!(name));
    assert_eq!(
        browser
            .eval("document.getElementById('new-project-submit').disabled")
            .await?,
        json!(false)
    );

    // The banner can be closed.
    browser.click("#error-close").await?;
    assert_eq!(browser.eval(BANNER).await?, json!(""));
    Ok(())
}

#[tokio::test]
async fn the_search_page_finds_marks_filters_and_links_to_the_project() -> Result<()> {
    let root = tempfile::tempdir()?;
    let daemon = start_daemon(root.path()).await?;
    let http = authorized_client(&daemon)?;
    add_project(&http, &daemon).await?;
    upload(
        &http,
        &daemon,
        "评标报告/评标报告.txt",
        "推荐中标候选人：河南宏达建设工程有限公司\n评标室2 通道03\n"
            .as_bytes()
            .to_vec(),
    )
    .await?;
    // The index follows the catalog within a second; wait until the document is searchable
    // so that the page is judged, not the indexer's latency.
    let mut found = false;
    for _ in 0..50 {
        let response = http
            .get(format!("{}/api/search?q={}", daemon.url, encode("宏达")))
            .send()
            .await?;
        if expect_status(response, 200).await?["total"].as_u64() >= Some(1) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the uploaded document never became searchable");

    let browser = Browser::launch().await?;
    log_in(&browser, &daemon).await?;
    browser.goto(&format!("{}/search.html", daemon.url)).await?;
    browser
        .wait_for(
            "document.getElementById('search-form')",
            Duration::from_secs(15),
        )
        .await?;
    browser.eval(&set_value("q", "宏达")).await?;
    browser.click("#search-form button[type=submit]").await?;
    let marks = browser
        .wait_for(
            "document.querySelectorAll('.hit').length > 0 && \
             [...document.querySelectorAll('#results mark')].map((m) => m.textContent)",
            Duration::from_secs(15),
        )
        .await?;
    assert!(
        marks.as_array().is_some_and(|m| m
            .iter()
            .any(|t| t.as_str().unwrap_or_default().contains("宏达"))),
        "matches are marked: {marks}"
    );
    assert_eq!(
        browser
            .eval("new URLSearchParams(location.search).get('q')")
            .await?,
        json!("宏达"),
        "the query is kept in the address"
    );
    let summary = browser
        .eval("document.getElementById('summary').textContent")
        .await?;
    assert!(
        summary.as_str().unwrap_or_default().contains("共"),
        "{summary}"
    );

    // The facets arrive; choosing 文档 keeps only documents and puts the filter in the address.
    let facet = "[...document.querySelectorAll('#facets .facet-group a')]\
                 .find((a) => a.textContent.startsWith('文档'))";
    browser
        .wait_for(&format!("{facet} !== undefined"), Duration::from_secs(15))
        .await?;
    browser.eval(&format!("{facet}.click()")).await?;
    browser
        .wait_for(
            "location.search.includes('kind=document') && \
             document.querySelectorAll('.hit').length > 0 && \
             !document.querySelector('#results .loading')",
            Duration::from_secs(15),
        )
        .await?;
    let badges = browser
        .eval("[...document.querySelectorAll('.hit .badge')].map((b) => b.textContent)")
        .await?;
    assert!(
        badges
            .as_array()
            .is_some_and(|b| !b.is_empty() && b.iter().all(|t| t == "文档")),
        "only documents after the filter: {badges}"
    );

    // A digit beside a Han character: the gram pair 室2 finds the text.
    browser.eval(&set_value("q", "评标室2 通道03")).await?;
    browser.click("#search-form button[type=submit]").await?;
    browser
        .wait_for(
            "[...document.querySelectorAll('.hit-snippet mark')].some((m) => m.textContent.includes('通道03'))",
            Duration::from_secs(15),
        )
        .await?;

    // Nothing found says so, with no error.
    browser.eval(&set_value("q", "不存在的词语组合")).await?;
    browser.click("#search-form button[type=submit]").await?;
    browser
        .wait_for(
            "document.getElementById('results').textContent.includes('没有找到')",
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(browser.eval(BANNER).await?, json!(""));

    // The project link of a hit opens the project page.
    browser.eval(&set_value("q", "宏达")).await?;
    browser.click("#search-form button[type=submit]").await?;
    browser
        .wait_for(
            "document.querySelector('.hit .hit-meta a')",
            Duration::from_secs(15),
        )
        .await?;
    browser.click(".hit .hit-meta a").await?;
    browser
        .wait_for(
            &format!(
                "location.hash === {} && document.querySelector('#project-meta h1')",
                serde_json::to_string(&format!("#/projects/{NUMBER}"))?
            ),
            Duration::from_secs(15),
        )
        .await?;
    Ok(())
}

/// Select and burn from the project list, a monthly schedule shown in words with its next fire
/// time, a dry run of the batch template with its per-row error, and the 复检 page: shelf
/// location saved and a re-read that passes.
#[tokio::test]
async fn schedules_batch_select_and_burn_and_reinspection_pages() -> Result<()> {
    let root = tempfile::tempdir()?;
    let daemon = start_daemon(root.path()).await?;
    let http = authorized_client(&daemon)?;
    add_project(&http, &daemon).await?;
    upload(&http, &daemon, "评标报告/报告.txt", blob(20_000, 7)).await?;
    let template = root.path().join("模板.xlsx");
    let response = http
        .get(format!("{}/api/batch/template.xlsx", daemon.url))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "template: {}",
        response.status()
    );
    std::fs::write(&template, response.bytes().await?)?;

    let browser = Browser::launch().await?;
    log_in(&browser, &daemon).await?;
    let checkbox = format!("document.querySelector('.select-project[data-number=\"{NUMBER}\"]')");
    browser.wait_for(&checkbox, Duration::from_secs(15)).await?;
    browser
        .eval(&format!(
            "{checkbox}.click(); {}",
            set_value("burn-priority", "7")
        ))
        .await?;
    browser.click("#burn-selected").await?;
    let mut job = None;
    for _ in 0..100 {
        let response = http.get(format!("{}/api/jobs", daemon.url)).send().await?;
        if let Some(first) = expect_status(response, 200)
            .await?
            .as_array()
            .and_then(|j| j.first().cloned())
        {
            job = Some(first);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = job.context("selecting and burning made no job")?;
    assert_eq!(job["priority"], json!(7), "{job}");
    assert_eq!(job["project_number"], json!(NUMBER));

    browser.goto(&format!("{}/#/schedules", daemon.url)).await?;
    browser
        .wait_for(
            "document.getElementById('schedule-form')",
            Duration::from_secs(15),
        )
        .await?;
    browser
        .eval(
            &[
                set_value("schedule-name", "月末归档"),
                set_value("schedule-rule", "monthly"),
                "document.getElementById('schedule-rule').dispatchEvent(new Event('change'));"
                    .into(),
                set_value("schedule-day", "31"),
                set_value("schedule-time", "02:00"),
            ]
            .concat(),
        )
        .await?;
    browser.click("#schedule-form button[type=submit]").await?;
    let shown = browser
        .wait_for(
            "(() => { const r = document.querySelector('.schedule-rule'); \
             return r && [r.textContent, document.querySelector('.schedule-next').textContent]; })()",
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(shown[0], json!("每月最后一天 02:00"), "{shown}");
    assert!(
        shown[1].as_str().unwrap_or_default().ends_with(" 02:00"),
        "the next fire time is shown: {shown}"
    );

    browser.set_files("#batch-file", &[&template]).await?;
    browser.click("#batch-check").await?;
    let errors = browser
        .wait_for(
            "(() => { const t = document.querySelector('.batch-errors'); \
             return t && [...t.querySelectorAll('tbody tr')].map((r) => r.textContent); })()",
            Duration::from_secs(15),
        )
        .await?;
    let errors = errors.as_array().context("error rows")?;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .as_str()
            .unwrap_or_default()
            .starts_with("第 2 行源文件夹"),
        "{errors:?}"
    );

    // The CLI's token is gone with the one-time password; follow the job with the API client.
    let id = job["id"].as_i64().context("job id")?;
    let mut status = json!(null);
    for _ in 0..1200 {
        let response = http
            .get(format!("{}/api/jobs/{id}", daemon.url))
            .send()
            .await?;
        status = expect_status(response, 200).await?["status"].clone();
        if status != json!("queued") && status != json!("running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, json!("succeeded"));
    browser
        .goto(&format!("{}/#/inspections", daemon.url))
        .await?;
    let first_row = "document.querySelector('.due-table tbody tr[data-disc]')";
    browser.wait_for(first_row, Duration::from_secs(15)).await?;
    let disc = browser.eval(&format!("{first_row}.dataset.disc")).await?;
    browser
        .eval(&format!(
            "{first_row}.querySelector('.shelf-input').value = 'A柜-3层-12盒'; \
             {first_row}.querySelector('.shelf-input + button').click();"
        ))
        .await?;
    let mut saved = false;
    for _ in 0..100 {
        let response = http.get(format!("{}/api/discs", daemon.url)).send().await?;
        let discs = expect_status(response, 200).await?;
        if discs.as_array().is_some_and(|d| {
            d.iter().any(|d| {
                Some(d["id"].to_string().as_str()) == disc.as_str() && d["shelf"] == "A柜-3层-12盒"
            })
        }) {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saved, "the shelf location was not saved");
    browser
        .eval(&format!(
            "[...{first_row}.querySelectorAll('button')].find((b) => b.textContent === '立即复检').click()"
        ))
        .await?;
    let notice = browser
        .wait_for(
            "(() => { const t = document.getElementById('notice-text').textContent; \
             return t.includes('复检通过') && t; })()",
            Duration::from_secs(30),
        )
        .await?;
    assert!(
        notice.as_str().unwrap_or_default().contains("复检通过"),
        "{notice}"
    );
    assert_eq!(browser.eval(BANNER).await?, json!(""));
    // The disc list shows the re-read with the copy.
    browser.goto(&format!("{}/#/discs", daemon.url)).await?;
    let shown = browser
        .wait_for(
            "(() => { const p = document.querySelector('.disc-table .inspection-passed');              return p && p.textContent; })()",
            Duration::from_secs(15),
        )
        .await?;
    assert!(
        shown.as_str().unwrap_or_default().starts_with("复检通过"),
        "{shown}"
    );
    Ok(())
}

/// The drives page: a drive taken out of service after two failed discs shows its state, reason,
/// counters and an open alert; the admin returns it to service with the page's button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drives_page_flags_a_drive_out_of_service_and_the_admin_returns_it() -> Result<()> {
    use witness_tests::burning::{add_project, virtual_drive, write_sources};
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            // One failure takes the drive out: whether the failing drive gets a second disc
            // before the good one has taken every volume depends on timing.
            "{}{}[copies]\noptical = 1\ndisk = 0\n[burning]\nout_of_service_after = 1\n",
            virtual_drive("bd1", 8 << 20, None, None),
            virtual_drive("bad", 8 << 20, None, Some(2)),
        ),
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    // Before logging in: changing the one-time password removes the token's file.
    let client = daemon.client();
    let sources = tmp.path().join("src");
    write_sources(&sources, 4, 5 << 20, 21)?;
    add_project(&client, "UI-DRV-0001", &sources).await?;
    let job = client.backup("UI-DRV-0001").await?;
    witness_controller::cli::wait(&client, job.id).await?;

    let browser = Browser::launch().await?;
    log_in(&browser, &daemon).await?;
    browser.goto(&format!("{}/#/drives", daemon.url)).await?;
    let state = "document.querySelector('.drive-table tr[data-drive=\"bad\"] .drive-state')";
    browser
        .wait_for(
            &format!("{state} && {state}.textContent === '已停用'"),
            Duration::from_secs(15),
        )
        .await?;
    let row = |selector: &str| {
        format!(
            "document.querySelector('.drive-table tr[data-drive=\"bad\"] {selector}')?.textContent"
        )
    };
    let reason = browser.eval(&row(".drive-reason")).await?;
    assert!(
        reason
            .as_str()
            .unwrap_or_default()
            .contains("连续 1 张光盘失败"),
        "{reason}"
    );
    assert_eq!(browser.eval(&row(".drive-bad")).await?, json!("废 1"));
    assert_eq!(
        browser
            .eval("document.querySelector('.alert-table tbody').textContent.includes('待处理')")
            .await?,
        json!(true)
    );
    // The page asks for confirmation; the person says yes.
    browser.eval("window.confirm = () => true; true").await?;
    browser
        .click(".drive-table tr[data-drive=\"bad\"] .return-to-service")
        .await?;
    browser
        .wait_for(
            &format!("{state} && {state}.textContent === '空闲'"),
            Duration::from_secs(15),
        )
        .await?;
    assert_eq!(
        browser
            .eval("document.querySelector('.drive-table tr[data-drive=\"bad\"] .return-to-service') === null")
            .await?,
        json!(true)
    );
    assert_eq!(
        browser
            .eval("document.querySelector('.alert-table tbody').textContent.includes('已处理')")
            .await?,
        json!(true)
    );
    assert_eq!(browser.eval(BANNER).await?, json!(""));
    Ok(())
}
