//! Several real `ward serve` processes on one PostgreSQL database, sharing
//! 20 Okta instances through leases: `kill -9` a random daemon 20 times
//! during the backfill, and pause one (`SIGSTOP`) past its lease. Needs
//! `WARD_TEST_POSTGRES_URL` (`cargo xtask test --test scale_out`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use rand::Rng;
use ward_standins::okta::OktaConfig;
use ward_store::testing::SeqLockHold;
use ward_store::{AUDIT_STREAM, MasterKey, Store};
use ward_tests::processes::{
    OktaFixture, connect_okta_instances, signal, spawn_serve, stored_event_ids, wait_for_events,
};

/// Short so takeovers happen within the test; a configuration value, not
/// a security limit.
const TTL_SECS: u64 = 3;

fn ward_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ward"))
}

/// An Okta stand-in, a fresh PostgreSQL database and `instances` Okta
/// instances on it, each allowed to call as fast as the stand-in answers.
struct Cluster {
    fixture: OktaFixture,
    store: Store,
    ids: Vec<String>,
    url: String,
}

impl Cluster {
    async fn start(events: usize, instances: usize) -> anyhow::Result<Cluster> {
        let url = ward_store::testing::fresh_postgres_database()
            .await
            .map_err(anyhow::Error::msg)?;
        let fixture = OktaFixture::start(OktaConfig {
            events,
            users: 5,
            ..OktaConfig::default()
        })
        .await?;
        let mut cluster = Cluster {
            fixture,
            store: Store::open(&url, MasterKey::generate()).await?,
            ids: Vec::new(),
            url,
        };
        // The operator connects the instances through one daemon, then
        // the `ward serve` processes do the rest.
        cluster.ids = connect_okta_instances(
            &cluster.config_text("setup", 1000),
            "Okta",
            instances,
            Some(600_000),
        )
        .await?;
        Ok(cluster)
    }

    fn config_text(&self, name: &str, max_leases: usize) -> String {
        self.fixture.serve_config(&format!(
            "[store]\nurl = \"{url}\"\nkey_file = \"{key}\"\n\n\
                 [scheduler]\npoll_interval_secs = 1\nlease_ttl_secs = {TTL_SECS}\n\
                 max_leases = {max_leases}\ndaemon_name = \"{name}\"\n",
            url = self.url,
            key = self.fixture.dir.path().join("master.key").display(),
        ))
    }

    /// Writes daemon `name`'s configuration and starts it, logging to
    /// `<name>.log`.
    fn spawn(&self, name: &str, max_leases: usize) -> anyhow::Result<Child> {
        let config = self.fixture.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, self.config_text(name, max_leases))?;
        spawn_serve(ward_bin(), &config, Some(&self.log(name)))
    }

    fn log(&self, name: &str) -> PathBuf {
        self.fixture.dir.path().join(format!("{name}.log"))
    }

    /// Every instance holds exactly the stand-in's events, once each.
    async fn assert_exactly_once(&self) -> anyhow::Result<()> {
        let expected: HashSet<String> = self.fixture.okta.event_ids().into_iter().collect();
        for id in &self.ids {
            let stored = stored_event_ids(&self.store, id).await?;
            let unique: HashSet<String> = stored.iter().cloned().collect();
            ensure!(unique.len() == stored.len(), "duplicates in {id}");
            ensure!(unique == expected, "instance {id} lost events");
            ensure!(self.store.event_count(id).await? == expected.len() as u64);
        }
        Ok(())
    }
}

/// What the watcher has seen of one instance.
#[derive(Default)]
struct Watch {
    count: u64,
    cursors: Vec<String>,
    unworked_since: Option<Instant>,
    longest_unworked: Duration,
}

/// Samples every instance: counts and cursors never go back, and how long
/// each went without a live lease held by a live daemon.
async fn sample(
    store: &Store,
    ids: &[String],
    dead: &HashSet<String>,
    total: u64,
    watch: &mut HashMap<String, Watch>,
) -> anyhow::Result<bool> {
    let now = Instant::now();
    let now_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)?;
    // One read of every lease, so a sample sees them all at one moment.
    let leases: HashMap<String, ward_store::Lease> = store
        .leases()
        .await?
        .into_iter()
        .map(|l| (l.instance_id.clone(), l))
        .collect();
    let mut done = true;
    for id in ids {
        let w = watch.entry(id.clone()).or_default();
        let count = store.event_count(id).await?;
        ensure!(
            count >= w.count,
            "{id}: events went from {} to {count}",
            w.count
        );
        w.count = count;
        if let Some(cursor) = store.cursor(id, AUDIT_STREAM).await?
            && w.cursors.last() != Some(&cursor)
        {
            ensure!(
                !w.cursors.contains(&cursor),
                "{id}: cursor moved back to {cursor}"
            );
            w.cursors.push(cursor);
        }
        if count >= total {
            w.unworked_since = None;
            continue;
        }
        done = false;
        let worked = leases
            .get(id)
            .is_some_and(|l| l.expires_ms > now_ms && !dead.contains(&l.owner));
        match (worked, w.unworked_since) {
            (true, Some(since)) => {
                w.longest_unworked = w.longest_unworked.max(now - since);
                w.unworked_since = None;
            }
            (false, None) => w.unworked_since = Some(now),
            _ => {}
        }
    }
    Ok(done)
}

/// The lease owners (daemon ids) whose name is `name`.
async fn owners_named(
    store: &Store,
    ids: &[String],
    name: &str,
) -> anyhow::Result<HashSet<String>> {
    let mut owners = HashSet::new();
    for id in ids {
        if let Some(l) = store.lease(id).await?
            && l.owner
                .strip_prefix(name)
                .is_some_and(|r| r.starts_with('-'))
        {
            owners.insert(l.owner);
        }
    }
    Ok(owners)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_twenty_kills_store_every_event_once() -> anyhow::Result<()> {
    const PER_INSTANCE: usize = 10_000;
    const INSTANCES: usize = 20;
    const KILLS: usize = 20;
    let cluster = Cluster::start(PER_INSTANCE, INSTANCES).await?;
    let names = ["d0", "d1", "d2"];
    // Ten each: one daemon down, the other two still cover all twenty.
    let mut daemons: Vec<Child> = names
        .iter()
        .map(|n| cluster.spawn(n, 10))
        .collect::<anyhow::Result<_>>()?;

    // Every instance gets claimed before the clock for "unworked" starts.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut all = true;
        for id in &cluster.ids {
            all &= cluster
                .store
                .lease(id)
                .await?
                .is_some_and(|l| !l.owner.is_empty());
        }
        if all {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the daemons never claimed every instance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let total = PER_INSTANCE as u64;
    let mut watch = HashMap::new();
    let mut dead = HashSet::new();
    let mut kills = 0;
    let mut kills_in_backfill = 0;
    while kills < KILLS {
        let pause = Duration::from_millis(rand::thread_rng().gen_range(300..1500));
        let until = Instant::now() + pause;
        while Instant::now() < until {
            sample(&cluster.store, &cluster.ids, &dead, total, &mut watch).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let victim = rand::thread_rng().gen_range(0..names.len());
        let owners = owners_named(&cluster.store, &cluster.ids, names[victim]).await?;
        daemons[victim].kill()?; // SIGKILL
        daemons[victim].wait()?;
        dead.extend(owners);
        kills += 1;
        if !sample(&cluster.store, &cluster.ids, &dead, total, &mut watch).await? {
            kills_in_backfill += 1;
        }
        daemons[victim] = cluster.spawn(names[victim], 10)?;
    }

    let deadline = Instant::now() + Duration::from_secs(600);
    while !sample(&cluster.store, &cluster.ids, &dead, total, &mut watch).await? {
        ensure!(Instant::now() < deadline, "the backfill did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Polls after the end add nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for d in &mut daemons {
        d.kill()?;
        d.wait()?;
    }
    cluster.assert_exactly_once().await?;
    let total_stored: u64 = watch.values().map(|w| w.count).sum();
    ensure!(total_stored == (PER_INSTANCE * INSTANCES) as u64);
    ensure!(
        kills_in_backfill == KILLS,
        "only {kills_in_backfill} of {KILLS} kills hit the backfill"
    );
    let longest = watch
        .values()
        .map(|w| w.longest_unworked)
        .max()
        .unwrap_or_default();
    println!(
        "longest time an instance went without a live daemon: {longest:?} (lease TTL {TTL_SECS} s)"
    );
    ensure!(
        longest <= Duration::from_secs(2 * TTL_SECS),
        "an instance went {longest:?} without a live daemon (lease TTL {TTL_SECS} s)"
    );
    Ok(())
}

fn mentions(log: &Path, what: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(what)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_daemon_s_late_commit_is_refused() -> anyhow::Result<()> {
    const REFUSED: &str = "page refused by fencing";
    let cluster = Cluster::start(300_000, 1).await?;
    let id = cluster.ids[0].clone();
    let names = ["first", "second"];
    let mut daemons = vec![cluster.spawn(names[0], 1)?];
    wait_for_events(&cluster.store, &id, 1, Duration::from_secs(120)).await?;
    daemons.push(cluster.spawn(names[1], 1)?);

    // Catch the holder in the middle of a page commit: the test holds the
    // lock every event-inserting transaction takes first, so the holder's
    // next commit waits in the database with its transaction open. Pause
    // the holder there, past its lease, until the other daemon has taken
    // the instance over; then let the commit go on. Its fence check finds
    // the epoch gone and refuses the page.
    let held = cluster.store.lease(&id).await?.context("lease")?;
    let h = names
        .iter()
        .position(|n| held.owner.starts_with(&format!("{n}-")))
        .context("a daemon holds the lease")?;
    let other = names[1 - h];
    let log = cluster.log(names[h]);
    let refused_before = mentions(&log, REFUSED);
    let mut hold = SeqLockHold::take(&cluster.url)
        .await
        .map_err(anyhow::Error::msg)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while hold.waiters().await.map_err(anyhow::Error::msg)? == 0 {
        ensure!(
            Instant::now() < deadline,
            "the holder never tried to commit a page"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&daemons[h], "STOP")?;
    let paused_at = cluster.store.event_count(&id).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lease = cluster.store.lease(&id).await?.context("lease")?;
        if lease.owner.starts_with(&format!("{other}-")) {
            ensure!(lease.epoch > held.epoch, "{lease:?} after {held:?}");
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "no takeover while paused: {lease:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hold.release().await.map_err(anyhow::Error::msg)?;
    signal(&daemons[h], "CONT")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while mentions(&log, REFUSED) == refused_before {
        ensure!(
            Instant::now() < deadline,
            "{}'s late page was not refused by fencing; its log: {}",
            names[h],
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The refused page stored nothing and the lease stayed with the other.
    let lease = cluster.store.lease(&id).await?.context("lease")?;
    ensure!(lease.owner.starts_with(&format!("{other}-")), "{lease:?}");
    ensure!(
        cluster.store.event_count(&id).await? >= paused_at,
        "events went away"
    );

    let total = cluster.fixture.okta.event_count() as u64;
    let n = wait_for_events(&cluster.store, &id, total, Duration::from_secs(600)).await?;
    ensure!(n == total, "backfill stopped at {n} of {total}");
    for d in &mut daemons {
        d.kill()?;
        d.wait()?;
    }
    cluster.assert_exactly_once().await?;
    Ok(())
}
