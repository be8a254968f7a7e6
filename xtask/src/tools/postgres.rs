//! A throwaway PostgreSQL cluster for the tests.
//!
//! [`setup`] is the one entry point: it finds PostgreSQL's server binaries
//! (installing the Debian `postgresql` package when they are missing and we
//! are root), runs `initdb` as a non-root user in a fresh temporary
//! directory (`initdb` refuses root), starts the server with `pg_ctl` on a
//! free loopback port and exports its superuser URL as
//! `WARD_TEST_POSTGRES_URL`. The cluster is stopped and its directory
//! removed when the tool context is dropped, after the tests, also when
//! they fail.
//!
//! The cluster trusts connections from 127.0.0.1 only and keeps its socket
//! in its own directory; it is a test fixture, not a deployment.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::{Context, Export};

/// Role `initdb` creates as the cluster's superuser; tests create one
/// database per test under it.
const ROLE: &str = "ward";
/// The unprivileged account that owns the cluster when we run as root.
const RUN_AS: &str = "postgres";

/// Starts a cluster kept running by `ctx` and exports its URL
/// (`postgres://ward@127.0.0.1:PORT/postgres`).
pub fn setup(ctx: &Context) -> anyhow::Result<Vec<Export>> {
    let bin = server_binaries()?;
    let cluster = Cluster::create(&bin)?;
    // Once created, `cluster` stops and removes itself when dropped.
    cluster.start()?;
    let url = cluster.url.clone();
    ctx.keep_running(Box::new(cluster));
    Ok(vec![Export {
        name: "WARD_TEST_POSTGRES_URL",
        value: url.into(),
    }])
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn server_binaries() -> anyhow::Result<PathBuf> {
    if let Some(dir) = find_binaries() {
        return Ok(dir);
    }
    if !is_root() {
        bail!(
            "PostgreSQL's server binaries (initdb, pg_ctl) were not found under /usr/lib/postgresql/*/bin; \
             install them (`sudo apt-get install -y postgresql`) or run this task as root"
        );
    }
    eprintln!("xtask: installing PostgreSQL (apt-get install -y postgresql)");
    let installed = run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "postgresql"])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    if installed.is_err() {
        run(Command::new("apt-get").arg("update"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    find_binaries().context(
        "`apt-get install postgresql` succeeded but no initdb was found under /usr/lib/postgresql/*/bin",
    )
}

fn find_binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    // The newest major version wins.
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    url: String,
    port: u16,
    started: std::cell::Cell<bool>,
}

impl Cluster {
    fn create(bin: &Path) -> anyhow::Result<Cluster> {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let dir = std::env::temp_dir().join(format!("ward-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the cluster directory {}", dir.display()))?;
        let port = free_port()?;
        let cluster = Cluster {
            bin: bin.to_owned(),
            url: format!("postgres://{ROLE}@127.0.0.1:{port}/postgres"),
            dir,
            port,
            started: std::cell::Cell::new(false),
        };
        if is_root() {
            let owner = Command::new("id")
                .args(["-u", RUN_AS])
                .output()
                .context("looking up the postgres account")?;
            let uid: u32 = String::from_utf8_lossy(&owner.stdout)
                .trim()
                .parse()
                .with_context(|| {
                    format!("no `{RUN_AS}` account to run initdb as (initdb refuses root); install the postgresql package, which creates it")
                })?;
            std::os::unix::fs::chown(&cluster.dir, Some(uid), None)
                .with_context(|| format!("giving {} to {RUN_AS}", cluster.dir.display()))?;
        }
        let data = cluster.data();
        run(cluster
            .as_owner(&cluster.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                ROLE,
                "--auth=trust",
                "--locale=C",
                "-E",
                "UTF8",
                "--no-sync",
            ]))
        .context("initdb failed")?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command run as the cluster's owner (`runuser -u postgres` as root).
    fn as_owner(&self, program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", RUN_AS, "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn start(&self) -> anyhow::Result<()> {
        // Loopback only, socket in our own directory, durability traded for
        // speed (the cluster is deleted afterwards), and enough connections
        // for parallel tests and several daemons with their pools.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        self.started.set(true);
        run(self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]))
        .with_context(|| {
            format!(
                "pg_ctl start failed; the server log is {}",
                self.dir.join("server.log").display()
            )
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started.get() {
            let stopped = run(self
                .as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]));
            if let Err(e) = stopped {
                eprintln!("xtask: stopping the PostgreSQL cluster: {e:#}");
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("xtask: removing {}: {e}", self.dir.display());
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("could not run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
