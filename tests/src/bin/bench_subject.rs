//! Market-subject library query benchmark: legal-person queries answered per second from the
//! SQLite cache (within the time to live), beside the baseline of asking the stand-in library on
//! loopback every time (`refresh`, which also rewrites the cache entry), and while the library
//! is down (the stale answer served after the refused connection).
//!
//! `cargo run --release -p witness-tests --bin bench_subject -- [QUERIES]` (default 2000)

use std::time::Instant;

use anyhow::{ensure, Result};
use time::macros::datetime;
use witness_controller::db;
use witness_controller::integrations::market_subject::query;
use witness_schemas::market_subject::{AnswerSource, MarketSubjectConfig, QueryDetail};
use witness_tests::standin_subject::{self, sample_bidder};

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2000);
    let (standin, _directory) = standin_subject::start().await?;
    let dir = tempfile::tempdir()?;
    let pool = db::open(dir.path()).await?;
    let config = MarketSubjectConfig {
        base_url: standin.url(),
        platform_code: "HNLK001".to_string(),
        token_file: None,
        max_attempts: 72,
        backoff_initial_seconds: 10,
        backoff_max_seconds: 3600,
        probe_seconds: 60,
        timeout_seconds: 5.0,
        query_cache_ttl_seconds: 86_400,
    };
    let now = datetime!(2026-03-18 08:00 +8);
    let code = sample_bidder().code;
    let mut rates = Vec::new();
    for (label, refresh, down, expected) in [
        (
            "library (refresh every time)",
            true,
            false,
            AnswerSource::Library,
        ),
        ("cache hit", false, false, AnswerSource::Cache),
        ("stale, library down", true, true, AnswerSource::StaleCache),
    ] {
        if down {
            standin.down();
        }
        for detail in [QueryDetail::Basic, QueryDetail::Comprehensive] {
            // Warm: the first answer fills the cache.
            query::legal_person(&pool, &config, &code, detail, false, now).await?;
            let later = if down {
                // Past the time to live, so the answer is stale rather than merely cached.
                now + time::Duration::days(2)
            } else {
                now
            };
            let start = Instant::now();
            for _ in 0..n {
                let answer =
                    query::legal_person(&pool, &config, &code, detail, refresh, later).await?;
                ensure!(answer.source == expected, "{label}: {:?}", answer.source);
            }
            let seconds = start.elapsed().as_secs_f64();
            let rate = n as f64 / seconds;
            println!(
                "{label:<30} {:<14} {n} queries in {seconds:.2} s: {rate:.0} answers/s",
                detail.as_str()
            );
            rates.push((label, detail, rate));
        }
    }
    for detail in [QueryDetail::Basic, QueryDetail::Comprehensive] {
        let of = |label: &str| {
            rates
                .iter()
                .find(|(l, d, _)| *l == label && *d == detail)
                .map(|(_, _, r)| *r)
                .unwrap_or(0.0)
        };
        let baseline = of("library (refresh every time)");
        println!(
            "{}: cache {:.0}/s vs library {baseline:.0}/s (ratio {:.1}); stale-when-down {:.0}/s (ratio {:.1})",
            detail.as_str(),
            of("cache hit"),
            of("cache hit") / baseline,
            of("stale, library down"),
            of("stale, library down") / baseline
        );
    }
    Ok(())
}
