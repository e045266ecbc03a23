//! The 评标结果 page in headless Chromium against the real daemon, the SMPP peer and the
//! stand-in expert library: bidders registered with and without a phone, an SMS notice that
//! reaches the gateway, an evaluation result that reaches the library valid by its schema, and a
//! malformed pasted line refused naming its line.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use witness_controller::cli::encode;
use witness_schemas::api::NewProject;
use witness_tests::browser::Browser;
use witness_tests::daemon::Daemon;
use witness_tests::smpp_peer::SmppPeer;
use witness_tests::standin::StandIn;

const NUMBER: &str = "LK-2026-结果-01";
const FRESH_PASSWORD: &str = "见证-Results-2026";

#[tokio::test]
async fn bidders_notices_and_results_are_entered_on_the_results_page() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let peer = SmppPeer::start("witness", "pw-SMPP-ui").await?;
    let standin = StandIn::start().await?;
    let config = tmp.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "[integrations.expert_library]\nbase_url = \"{}\"\nplatform_code = \"HNLK001\"\n\n{}",
            standin.url(),
            peer.sms_section(tmp.path(), "pw-SMPP-ui")?
        ),
    )?;
    let daemon = Daemon::start(&tmp.path().join("data"), Some(&config)).await?;
    let client = daemon.client();
    client
        .add_project(&NewProject {
            number: NUMBER.into(),
            name: "兰考县第二污水处理厂工程".into(),
            category: witness_controller::cli::parse_category("construction")?,
            opening: "2026-11-20T09:30:00+08:00".into(),
        })
        .await?;
    client
        .put_trade_codes(NUMBER, "A41022520261120001", "A41022520261120001001")
        .await?;

    let browser = Browser::launch().await?;
    let page = format!("{}/results.html?project={}", daemon.url, encode(NUMBER));
    browser
        .open_as_first_admin(
            &page,
            &daemon.admin_password().context("one-time password")?,
            FRESH_PASSWORD,
        )
        .await?;
    browser
        .wait_for(
            &format!(
                "document.getElementById('project').value === {}",
                json!(NUMBER)
            ),
            Duration::from_secs(15),
        )
        .await
        .context("the project is not selected")?;

    // Two bidders, one without a phone.
    for (count, (name, phone)) in [
        ("河南兰考建设集团有限公司", "13812345678"),
        ("商丘路桥有限公司", ""),
    ]
    .into_iter()
    .enumerate()
    {
        browser
            .eval(&format!(
                "document.getElementById('bidder-name').value = {};
                 document.getElementById('bidder-phone').value = {};",
                json!(name),
                json!(phone)
            ))
            .await?;
        browser.click("#bidder-form button[type=submit]").await?;
        // One at a time: the form is cleared when the server has taken the bidder.
        let seen = browser
            .wait_for(
                &format!(
                    "document.querySelectorAll('#bidders-table tbody tr').length === {} || \
                     (!document.getElementById('error-banner').hidden && \
                      document.getElementById('error-text').textContent)",
                    count + 1
                ),
                Duration::from_secs(15),
            )
            .await
            .with_context(|| format!("bidder {name} is not listed"))?;
        ensure!(seen == Value::Bool(true), "registering {name}: {seen}");
    }
    let rows = browser
        .wait_for(
            "document.querySelectorAll('#bidders-table tbody tr').length === 2 && \
             [...document.querySelectorAll('#bidders-table tbody tr')].map(r => r.textContent).join('|')",
            Duration::from_secs(15),
        )
        .await
        .context("the bidders are not listed")?;
    let rows = rows.as_str().unwrap_or("");
    ensure!(
        rows.contains("138****5678") && !rows.contains("13812345678"),
        "{rows}"
    );
    ensure!(rows.contains("短信无法通知"), "{rows}");

    // The change notice goes to the bidder with a phone and names the one without.
    browser
        .eval("document.getElementById('notice-kind').value = 'change_notice';")
        .await?;
    browser.click("#notice-form button[type=submit]").await?;
    let result = browser
        .wait_for(
            "document.getElementById('notice-result').textContent",
            Duration::from_secs(15),
        )
        .await?;
    let result = result.as_str().unwrap_or("");
    ensure!(
        result.contains("已排队 1 条短信") && result.contains("商丘路桥有限公司"),
        "{result}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while peer.received().is_empty() {
        ensure!(
            std::time::Instant::now() < deadline,
            "no SMS reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(peer.received()[0].destination_addr == "8613812345678");

    // A malformed pasted score line is refused in the page, naming its line; nothing is sent.
    browser
        .eval(
            "document.getElementById('record-kind').value = 'expert_scores';
             document.getElementById('record-kind').dispatchEvent(new Event('change'));
             document.getElementById('scores-lines').value =
               '张三,410102198001011234,河南兰考建设集团有限公司,91410225MA00000001,92.5\\n李四,缺少几项';",
        )
        .await?;
    browser.click("#record-form button[type=submit]").await?;
    let error = browser
        .wait_for(
            "!document.getElementById('error-banner').hidden && \
             document.getElementById('error-text').textContent",
            Duration::from_secs(10),
        )
        .await?;
    ensure!(error.as_str().unwrap_or("").contains("第 2 行"), "{error}");

    // The result announcement reaches the expert library, valid by its schema.
    browser
        .eval(
            "document.getElementById('error-banner').hidden = true;
             document.getElementById('record-kind').value = 'result_announcement';
             document.getElementById('record-kind').dispatchEvent(new Event('change'));
             document.getElementById('winner-name').value = '河南兰考建设集团有限公司';
             document.getElementById('winner-code').value = '91410225MA00000001';
             document.getElementById('win-price').value = '12345678.90';
             document.getElementById('notice-time').value = '2026-11-25T10:00';",
        )
        .await?;
    browser.click("#record-form button[type=submit]").await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let received = loop {
        let received = standin.received_of("result-announcement");
        if !received.is_empty() {
            break received;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the announcement did not reach the stand-in; banner: {}",
            browser
                .eval("document.getElementById('error-text').textContent")
                .await?
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(received.len() == 1, "{received:?}");
    let text = received[0].payload.to_string();
    ensure!(
        text.contains("河南兰考建设集团有限公司") && text.contains("12345678.90"),
        "{text}"
    );
    ensure!(
        browser
            .eval("document.getElementById('error-banner').hidden")
            .await?
            == Value::Bool(true)
    );
    // Nothing from the refused score lines left.
    ensure!(standin.received_of("expert-scores").is_empty());
    Ok(())
}
