//! `ward serve`: the daemon. Opens the store, loads the plugins, resumes
//! every instance's worker and serves the REST API until SIGINT/SIGTERM,
//! then stops accepting requests, lets in-flight pages commit or roll back
//! and closes the store.

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;
use ward_daemon::{Config, Daemon};

/// Binds the API address, falling back to an ephemeral port when `fallback`
/// is set and the address is taken (the demo; a daemon must fail instead).
pub async fn bind(config: &Config, fallback: bool) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(config.api.listen).await {
        Ok(l) => Ok(l),
        Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
            let mut any = config.api.listen;
            any.set_port(0);
            TcpListener::bind(any)
                .await
                .with_context(|| format!("binding the API to {any}"))
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "binding the API to {} (set [api] listen in the configuration)",
                config.api.listen
            )
        }),
    }
}

/// The daemon's HTTP surface: the REST API, and the console at `/` (and
/// `/console/...`), both over the same daemon. The console is returned too,
/// for its one-time sign-in links.
pub fn app(daemon: &Daemon) -> (axum::Router, ward_console::Console) {
    let console = ward_console::Console::new(daemon.clone());
    let app = ward_api::router(daemon.clone()).merge(console.router());
    (app, console)
}

/// Serves `app` (see [`app`]) of an opened daemon on `listener` until
/// `stop` completes, then shuts the daemon down. Meanwhile freed heap is
/// handed back to the kernel ([`crate::memory`]).
pub async fn serve_until(
    daemon: Daemon,
    app: axum::Router,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let trimmer = crate::memory::spawn_trimmer();
    ward_api::serve(listener, app, stop).await;
    trimmer.abort();
    daemon.shutdown().await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight pages");
}

/// `ward serve --config FILE`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let daemon = Daemon::open(config).await?;
    if daemon.config.dev {
        eprintln!(
            "ward: WARNING: DEV MODE — plugins load without signature checks. Never run a production daemon with --dev."
        );
    }
    let listener = bind(&daemon.config, false).await?;
    let addr = listener.local_addr()?;
    if let Some(notice) = ward_api::ensure_api_secrets(&daemon).await?.notice() {
        println!("ward: {notice}");
    }
    for p in daemon.registry.pending() {
        println!(
            "ward: plugin {} {} is held: it asks for more than approved ({}); review with `ward plugin diff`, then `ward plugin approve`",
            p.key,
            p.version,
            p.widenings.join("; ")
        );
    }
    for r in daemon.registry.refused() {
        println!("ward: plugin {} not loaded: {}", r.source, r.reason);
    }
    let resumed = daemon.scheduler.resume_all().await?;
    let sinks = daemon.start_sinks()?;
    let loaded: Vec<String> = daemon
        .registry
        .list()
        .iter()
        .map(|p| {
            let m = p.plugin.manifest();
            format!("{} {}", m.key, m.version)
        })
        .collect();
    println!(
        "ward: serving http://{addr} (data in {}); plugins: {}; {resumed} instance(s) resumed; {sinks} sink(s)",
        daemon.config.data_dir.display(),
        if loaded.is_empty() {
            "none".to_string()
        } else {
            loaded.join(", ")
        }
    );
    let (app, console) = app(&daemon);
    println!(
        "ward: console at http://{addr}/ (sign in with the API secrets, or once with {})",
        console.one_time_link(&format!("http://{addr}"))
    );
    serve_until(daemon, app, listener, shutdown_signal()).await
}
