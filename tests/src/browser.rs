//! A real, headless Chromium driven over WebDriver: `chromedriver` from the
//! Debian package `chromium-driver`, spawned here with a temporary profile,
//! and the `fantoccini` client. `cargo xtask test` installs both packages
//! and exports `WARD_CHROMIUM` and `WARD_CHROMEDRIVER`; without them the
//! tests fail saying so (they never skip, and nothing downloads a browser).
//!
//! The browser reaches each provider stand-in under its real name
//! (`--host-resolver-rules`, this browser only) and accepts the stand-ins'
//! run-time CA through the session's `acceptInsecureCerts` capability,
//! which lasts as long as this one test session.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// The browser window (and so each screenshot) size.
pub const WINDOW: (u32, u32) = (1280, 800);

/// How the test finds the browser, when it is missing.
const HOW_TO_INSTALL: &str = "run the browser tests through `cargo xtask test` (it installs the \
     Debian packages `chromium` and `chromium-driver` and exports WARD_CHROMIUM and \
     WARD_CHROMEDRIVER), or install them (`apt-get install -y chromium chromium-driver`) and \
     set WARD_CHROMIUM=/usr/bin/chromium WARD_CHROMEDRIVER=/usr/bin/chromedriver";

fn tool(var: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("{var} is not set: {HOW_TO_INSTALL}"))?;
    if !path.is_file() {
        bail!("{var}={} does not exist: {HOW_TO_INSTALL}", path.display());
    }
    Ok(path)
}

/// A headless Chromium session and the chromedriver behind it (killed on
/// drop).
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: TempDir,
    artifacts: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium in which each
    /// `(host, addr)` resolves to the stand-in at `addr`. Screenshots go
    /// to `<target>/test-artifacts/console/`.
    pub async fn start(hosts: &[(String, SocketAddr)]) -> anyhow::Result<Browser> {
        let chromium = tool("WARD_CHROMIUM")?;
        let chromedriver = tool("WARD_CHROMEDRIVER")?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let profile = tempfile::tempdir()?;
        let rules = hosts
            .iter()
            .map(|(h, a)| format!("MAP {h} {a}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-extensions".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ];
        if !rules.is_empty() {
            args.push(format!("--host-resolver-rules={rules}"));
        }
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let serde_json::Value::Object(caps) = caps else {
            bail!("capabilities are not an object");
        };
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver listens a moment after it starts: retry the session.
        let mut last = None;
        let mut client = None;
        for _ in 0..100 {
            match ClientBuilder::new(fantoccini_http())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(e) => {
                    last = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let client = client.ok_or_else(|| {
            anyhow!(
                "no WebDriver session from {} with {}: {}",
                chromedriver.display(),
                chromium.display(),
                last.unwrap_or_default()
            )
        })?;
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let artifacts = target.join("test-artifacts").join("console");
        std::fs::create_dir_all(&artifacts)?;
        Ok(Browser {
            client,
            driver,
            _profile: profile,
            artifacts,
        })
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    /// The element `css` (waiting for it up to 30 s: pages load, redirects
    /// finish).
    pub async fn find(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(e) => Ok(e),
            Err(e) => Err(anyhow!(
                "no element {css:?} on {}: {e}",
                self.url_now().await
            )),
        }
    }

    /// Waits (up to 30 s) until no element matches `css`: a form post's
    /// answer has replaced the page that held it.
    pub async fn gone(&self, css: &str) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.client.find_all(Locator::Css(css)).await?.is_empty() {
            if std::time::Instant::now() > deadline {
                return Err(anyhow!(
                    "{css:?} is still on {} after 30 s",
                    self.url_now().await
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Types `text` into the input `css`.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self.find(css).await?;
        e.clear().await?;
        e.send_keys(text).await?;
        Ok(())
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.find(css).await?.click().await?;
        Ok(())
    }

    /// The page's visible text.
    pub async fn text(&self) -> anyhow::Result<String> {
        Ok(self.find("body").await?.text().await?)
    }

    /// The current URL (for messages).
    pub async fn url_now(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Writes a screenshot of the window to `<artifacts>/<name>.png` and
    /// prints its path.
    pub async fn shot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        println!("screenshot: {}", path.display());
        Ok(path)
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let closed = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        closed.map_err(|e| anyhow!("closing the browser session: {e}"))
    }
}

/// Plain HTTP to the local chromedriver.
fn fantoccini_http() -> hyper_util::client::legacy::connect::HttpConnector {
    hyper_util::client::legacy::connect::HttpConnector::new()
}
