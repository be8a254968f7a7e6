//! `type = "http"`: one gzipped POST per batch.
//!
//! - `splunk-hec`: `POST <url>/services/collector/event`, `Authorization:
//!   Splunk <token>`, body = HEC envelopes `{"time","source","sourcetype",
//!   "index"?,"event","fields":{"ward_key"}}` one after another;
//! - `webhook`: `POST <url>`, `Authorization: Bearer <token>` when a secret
//!   is named, body = NDJSON.
//!
//! Every request carries `Content-Encoding: gzip` and `Idempotency-Key:
//! <sink>:<first seq>-<last seq>` (the same for a re-sent batch).
//! 2xx acknowledges the batch; 408, 429, 5xx and network errors are
//! transient (retried, `Retry-After` honoured); any other status is a
//! permanent refusal (dead-letter).

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde_json::{Value, json};
use ward_store::Store;

use crate::{Preset, SinkConfig, SinkError};

/// Longest `Retry-After` honoured as asked.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Why a batch was not acknowledged.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Try again later (after `retry_after` if the receiver said so).
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The receiver refused the batch; sending it again will not help.
    Permanent { message: String },
}

/// One event of a batch.
pub(crate) struct Item {
    pub key: String,
    pub time_ms: i64,
    pub body: Value,
}

pub(crate) struct HttpSink {
    name: String,
    client: reqwest::Client,
    endpoint: url::Url,
    preset: Preset,
    secret: Option<String>,
    sourcetype: String,
    index: Option<String>,
    store: Store,
}

impl HttpSink {
    pub(crate) fn new(config: &SinkConfig, store: Store) -> Result<HttpSink, SinkError> {
        let invalid = |message: String| SinkError::Config {
            sink: config.name.clone(),
            message,
        };
        let url = config.url.as_deref().unwrap_or_default();
        let mut endpoint =
            url::Url::parse(url).map_err(|e| invalid(format!("url {url:?}: {e}")))?;
        if config.preset == Preset::SplunkHec
            && !endpoint.path().ends_with("/services/collector/event")
        {
            let base = endpoint.path().trim_end_matches('/').to_owned();
            endpoint.set_path(&format!("{base}/services/collector/event"));
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("ca_file {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                invalid(format!(
                    "ca_file {}: not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            builder = builder.tls_certs_merge([cert]);
        }
        let client = builder
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        let sourcetype = config.sourcetype.clone().unwrap_or_else(|| {
            match config.format {
                crate::Format::Ocsf => "ocsf",
                crate::Format::Ward => "ward",
            }
            .to_owned()
        });
        Ok(HttpSink {
            name: config.name.clone(),
            client,
            endpoint,
            preset: config.preset,
            secret: config.secret.clone(),
            sourcetype,
            index: config.index.clone(),
            store,
        })
    }

    fn body(&self, items: &[Item]) -> Result<Vec<u8>, std::io::Error> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for item in items {
            let line = match self.preset {
                Preset::SplunkHec => {
                    let mut envelope = json!({
                        // HEC takes epoch seconds with a fraction.
                        "time": item.time_ms as f64 / 1000.0,
                        "source": "ward",
                        "sourcetype": self.sourcetype,
                        "event": item.body,
                        "fields": {"ward_key": item.key},
                    });
                    if let Some(index) = &self.index {
                        envelope["index"] = json!(index);
                    }
                    serde_json::to_vec(&envelope)
                }
                Preset::Webhook => serde_json::to_vec(&item.body),
            }
            .map_err(std::io::Error::other)?;
            gz.write_all(&line)?;
            gz.write_all(b"\n")?;
        }
        gz.finish()
    }

    /// Posts one batch; `Ok` only when the receiver acknowledged it.
    pub(crate) async fn send(&self, items: &[Item], first: i64, last: i64) -> Result<(), Refusal> {
        let token = match &self.secret {
            None => None,
            Some(secret) => match self.store.sink_secret(secret).await {
                Ok(Some(t)) => Some(t),
                Ok(None) => {
                    return Err(Refusal::Transient {
                        message: format!(
                            "sink secret `{secret}` is not set: run `ward sinks secret {secret}` (events wait in the store)"
                        ),
                        retry_after: None,
                    });
                }
                Err(e) => {
                    return Err(Refusal::Transient {
                        message: e.to_string(),
                        retry_after: None,
                    });
                }
            },
        };
        let body = self.body(items).map_err(|e| Refusal::Transient {
            message: format!("cannot encode the batch: {e}"),
            retry_after: None,
        })?;
        let content_type = match self.preset {
            Preset::SplunkHec => "application/json",
            Preset::Webhook => "application/x-ndjson",
        };
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_ENCODING, "gzip")
            .header("Idempotency-Key", format!("{}:{first}-{last}", self.name))
            .body(body);
        if let Some(token) = token {
            let scheme = match self.preset {
                Preset::SplunkHec => "Splunk",
                Preset::Webhook => "Bearer",
            };
            let mut value = HeaderValue::from_str(&format!("{scheme} {token}")).map_err(|_| {
                Refusal::Permanent {
                    message: format!(
                        "the sink secret `{}` holds characters not allowed in a header; set it again",
                        self.secret.as_deref().unwrap_or_default()
                    ),
                }
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(|e| Refusal::Transient {
            message: format!("POST {}: {}", self.endpoint, error_chain(&e)),
            retry_after: None,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        let text = response.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        let message = format!("POST {} answered {status}: {snippet}", self.endpoint);
        if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
            Err(Refusal::Transient {
                message,
                retry_after,
            })
        } else {
            Err(Refusal::Permanent { message })
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A `Retry-After` value (RFC 9110 10.2.3): delay-seconds or an HTTP-date,
/// capped at [`MAX_RETRY_AFTER`]; a date in the past means now.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::retry_after;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(" 30 ", now), Some(Duration::from_secs(30)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("86400", now), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after("soon", now), None);
    }
}
