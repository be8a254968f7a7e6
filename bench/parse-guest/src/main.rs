//! `ward_bench_parse ROUNDS < PAGE`: parses one Okta System Log page ROUNDS
//! times with the connector's own parser (`ward_okta::system_log::page`)
//! and prints, per round, the nanoseconds it took and the events it read.
//! Built for wasm32-wasip2 and run by `ward-bench parse` next to the same
//! call made natively; it is not part of any plugin.

use std::io::Read as _;
use std::time::Instant;

fn main() -> Result<(), String> {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .ok_or("usage: ward_bench_parse ROUNDS < PAGE")?;
    let mut page = Vec::new();
    std::io::stdin()
        .read_to_end(&mut page)
        .map_err(|e| format!("reading the page from stdin: {e}"))?;
    for _ in 0..rounds {
        let t = Instant::now();
        let events =
            ward_okta::system_log::page(&page).map_err(|e| format!("parsing the page: {e:?}"))?;
        let took = t.elapsed();
        println!("{} {}", took.as_nanos(), events.len());
    }
    Ok(())
}
