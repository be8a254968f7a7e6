//! Response scrubbing (#9): the cost of replacing the instance's stored
//! secret values in a 1,000-event System Log page before the guest reads
//! it, against the same pass with an empty secret set, and the share of a
//! whole `fetch-audit` call through the broker that it takes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ward_runtime::SecretSet;
use ward_runtime::caps::secrets::scrub;

use crate::figure::{Figure, median, micros, ratio};
use crate::runtime::{bundled, okta, runtime};
use crate::standin::Org;

const ROUNDS: usize = 200;
const CALLS: usize = 30;

/// Prints the scrubbing figures.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let org = Org::start(1_000, dir.path()).await?;
    let (headers, body) = org.first_page().await?;
    let secrets = BTreeMap::from([("api_token".to_string(), org.token.clone())]);
    let scrubbed = time_scrub(&SecretSet::new(secrets.clone()), &headers, &body)?;
    let empty = time_scrub(&SecretSet::new(BTreeMap::new()), &headers, &body)?;

    let runtime = runtime(Some(dir.path()), Some(&org))?;
    let plugin = bundled(&runtime, "okta")?;
    let domain = org.host().split('.').next().unwrap_or_default().to_string();
    let bound = okta(&plugin, &domain, secrets)?;
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(31);
    let since_ms = (since.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut calls = Vec::with_capacity(CALLS);
    for i in 0..=CALLS {
        let t = Instant::now();
        let page = bound
            .fetch_audit(since_ms, None)
            .await
            .result
            .map_err(|e| anyhow::anyhow!("fetch-audit through the broker failed: {e}"))?;
        if page.events.len() != 1_000 {
            anyhow::bail!("fetch-audit read {} events, not 1,000", page.events.len());
        }
        if i > 0 {
            calls.push(t.elapsed());
        }
    }
    let call = median(&mut calls);
    let extra = scrubbed.saturating_sub(empty);
    Figure {
        figure: "scrubbing: 1,000-event Okta page".into(),
        value: format!("{:.0} µs", micros(scrubbed)),
        baseline: format!("{:.0} µs with an empty secret set", micros(empty)),
        ratio: ratio(micros(empty), micros(scrubbed)),
        note: format!(
            "`caps::secrets::scrub::response` over the page's headers and body ({:.0} KB), median of {ROUNDS}; ratio < 1 means scrubbing costs that much more than the empty pass. A whole `fetch-audit` call through the broker (instantiate, HTTPS request to the stand-in, scrub, guest parse, output checks) takes {:.0} µs median of {CALLS}: scrubbing adds {:.1} % to it",
            body.len() as f64 / 1000.0,
            micros(call),
            100.0 * micros(extra) / micros(call).max(1.0),
        ),
    }
    .emit()?;
    Ok(())
}

fn time_scrub(
    secrets: &SecretSet,
    headers: &http::HeaderMap,
    body: &[u8],
) -> anyhow::Result<Duration> {
    let redactor = secrets.redactor();
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (mut h, mut b) = (headers.clone(), body.to_vec());
        let t = Instant::now();
        let n = scrub::response(&redactor, &mut h, &mut b);
        samples.push(t.elapsed());
        if n != 0 {
            anyhow::bail!("the bench page holds a secret value ({n} replaced)");
        }
    }
    Ok(median(&mut samples))
}
