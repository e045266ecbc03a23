//! The stand-in provincial expert library as a program, for demonstrations: point
//! `[integrations.expert_library] base_url` at it and watch the integrations page.
//!
//! `cargo run -p witness-tests --bin standin_platform -- 127.0.0.1:9300 [flaky]`
//! With `flaky`, requests cycle through 500, garbage, slow and partial answers between healthy
//! ones. Prints what it received every 5 seconds.

use std::time::Duration;

use witness_tests::standin::{Fault, StandIn};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9300".to_string());
    let flaky = args.next().as_deref() == Some("flaky");
    let standin = StandIn::start_on(addr.parse()?).await?;
    if flaky {
        standin.set_pattern(&[
            Fault::Error500,
            Fault::None,
            Fault::Garbage,
            Fault::Slow(Duration::from_secs(15)),
            Fault::None,
            Fault::Partial,
        ]);
    }
    println!(
        "stand-in expert library on {} (flaky: {flaky})",
        standin.url()
    );
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        println!(
            "requests {}  messages {}  duplicates {}  refused {}",
            standin.requests(),
            standin.received().len(),
            standin.duplicates(),
            standin.invalid().len()
        );
    }
}
