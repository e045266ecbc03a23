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
