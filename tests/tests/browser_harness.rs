//! Tests of the headless-Chromium harness (`witness_tests::browser`) against a tiny in-test page.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use witness_tests::browser::Browser;

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>harness</title></head>
<body>
  <h1>见证</h1>
  <button id="go" style="font-size: 24px">一键备份</button>
  <p id="out">waiting</p>
  <input type="file" id="pick" multiple>
  <script>
    window.clicks = 0;
    document.getElementById('pick').addEventListener('change', (e) => {
      document.body.dataset.picked = [...e.target.files].map((f) => f.name + ':' + f.size).join(',');
    });
    document.getElementById('go').addEventListener('click', () => {
      window.clicks += 1;
      // Change the DOM a little later, so that wait_for really has to wait.
      setTimeout(() => {
        document.getElementById('out').textContent = 'clicked ' + window.clicks;
        document.body.dataset.done = 'yes';
      }, 200);
    });
  </script>
</body>
</html>
"#;

/// Serves `PAGE` for every request with a hand-written HTTP/1.1 answer.
async fn serve_page() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(addr)
}

#[tokio::test]
async fn drives_a_page() -> Result<()> {
    let addr = serve_page().await?;
    let browser = Browser::launch().await?;
    browser.goto(&format!("http://{addr}/")).await?;

    assert_eq!(browser.eval("document.title").await?, json!("harness"));
    assert_eq!(
        browser
            .eval("document.querySelector('h1').textContent")
            .await?,
        json!("见证")
    );
    assert_eq!(
        browser.eval("document.readyState").await?,
        json!("complete")
    );

    browser.click("#go").await?;
    let done = browser
        .wait_for(
            "document.getElementById('out').textContent.startsWith('clicked') && document.getElementById('out').textContent",
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(done, json!("clicked 1"));
    assert_eq!(browser.eval("window.clicks").await?, json!(1));
    assert_eq!(
        browser.eval("document.body.dataset.done").await?,
        json!("yes")
    );

    // Promises are awaited; undefined is null; unserializable numbers come back as text.
    assert_eq!(
        browser
            .eval("new Promise(r => setTimeout(() => r({a: [1, '二']}), 50))")
            .await?,
        json!({"a": [1, "二"]})
    );
    assert_eq!(browser.eval("undefined").await?, json!(null));
    assert_eq!(browser.eval("1 / 0").await?, json!("Infinity"));

    // JavaScript exceptions are errors carrying the message.
    let err = browser.eval("throw new Error('坏了')").await.unwrap_err();
    assert!(format!("{err:#}").contains("坏了"), "{err:#}");
    let err = browser
        .eval("Promise.reject(new TypeError('rejected'))")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("rejected"), "{err:#}");

    // wait_for gives up with the last value.
    let err = browser
        .wait_for(
            "document.body.dataset.never || 0",
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("last: 0"), "{err:#}");

    // Clicking something that is not there is an error, and so is a hidden element.
    let err = browser.click("#no-such-button").await.unwrap_err();
    assert!(format!("{err:#}").contains("#no-such-button"), "{err:#}");
    browser
        .eval("document.getElementById('go').hidden = true")
        .await?;
    assert!(browser.click("#go").await.is_err());
    assert_eq!(browser.eval("window.clicks").await?, json!(1));

    // Files can be put into a file input; the page sees a change event.
    let files = tempfile::tempdir()?;
    let report = files.path().join("评标报告.pdf");
    std::fs::write(&report, b"%PDF-1.7")?;
    browser.set_files("#pick", &[&report]).await?;
    assert_eq!(
        browser
            .wait_for("document.body.dataset.picked", Duration::from_secs(5))
            .await?,
        json!("评标报告.pdf:8")
    );
    assert!(browser
        .set_files("#no-such-input", &[&report])
        .await
        .is_err());

    // A fragment-only navigation does not load a document, and goto still returns.
    browser
        .goto(&format!("http://{addr}/#/projects/A%2F1"))
        .await?;
    assert_eq!(
        browser.eval("location.hash").await?,
        json!("#/projects/A%2F1")
    );
    assert_eq!(browser.eval("window.clicks").await?, json!(1));

    // A full navigation gives a fresh document.
    browser.goto(&format!("http://{addr}/again")).await?;
    assert_eq!(browser.eval("window.clicks").await?, json!(0));

    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("page.png");
    browser.screenshot(&shot).await?;
    let png = std::fs::read(&shot)?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 1000,
        "suspiciously small screenshot: {} bytes",
        png.len()
    );
    Ok(())
}

#[tokio::test]
async fn drop_kills_chromium_and_removes_the_profile() -> Result<()> {
    let browser = Browser::launch().await?;
    let pid = browser.pid().expect("chromium is running");
    let profile = browser.profile_dir().to_path_buf();
    assert!(profile.is_dir());
    assert!(!group_members(pid).is_empty());

    drop(browser);

    assert!(!profile.exists(), "{} is left behind", profile.display());
    // Helpers notice their parent is gone within moments; allow for that.
    let mut left = group_members(pid);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = group_members(pid);
    }
    assert!(left.is_empty(), "chromium processes left: {left:?}");
    Ok(())
}

/// Live (non-zombie) processes in process group `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat =
                std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
                    .unwrap_or_default();
            // Fields after the parenthesised command: state, ppid, pgrp, ...
            let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .collect()
}
