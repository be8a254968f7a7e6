//! The API secrets when several daemons start at once: on one data
//! directory they share one file, on one store they share one pair, and no
//! daemon leaves a secrets file its API would refuse without saying so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;
use ward_api::{ApiSecrets, SECRETS_FILE, SecretsSetup, ensure_api_secrets, sha256_hex};
use ward_daemon::{Config, Daemon, Registry};
use ward_runtime::{Runtime, RuntimeConfig};
use ward_store::{MasterKey, Store};

/// How many daemons start at once.
const DAEMONS: usize = 8;

/// A daemon on the store at `url`, its own store handle (own connections)
/// and `data_dir`; no plugins: only its secrets matter here.
async fn daemon(runtime: &Runtime, url: &str, key: &MasterKey, data_dir: &Path) -> Daemon {
    let store = Store::open(url, key.clone()).await.unwrap();
    let config = Config {
        data_dir: data_dir.to_owned(),
        ..Config::default()
    };
    Daemon::assemble(
        store,
        runtime.clone(),
        Arc::new(Registry::default()),
        config,
    )
}

/// Starts `n` daemons on one store and the data directories `dir_of(i)`,
/// each on its own thread and runtime, lined up to set up their secrets at
/// the same instant.
fn start_all(
    n: usize,
    runtime: &Runtime,
    url: &str,
    key: &MasterKey,
    dir_of: impl Fn(usize) -> PathBuf,
) -> Vec<SecretsSetup> {
    let line = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (line, runtime, url, key, dir) = (
                line.clone(),
                runtime.clone(),
                url.to_owned(),
                key.clone(),
                dir_of(i),
            );
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let d = daemon(&runtime, &url, &key, &dir).await;
                    line.wait();
                    ensure_api_secrets(&d).await.unwrap()
                })
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

async fn stored_pair(store: &Store) -> (String, String) {
    let h = store.api_secret_hashes().await.unwrap();
    (h["user"].clone(), h["organization"].clone())
}

fn pair_of(secrets: &ApiSecrets) -> (String, String) {
    (sha256_hex(&secrets.user), sha256_hex(&secrets.organization))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_starting_at_once_on_one_data_directory_share_one_file() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let url = format!("sqlite://{}", dir.path().join("ward.db").display());
    let key = MasterKey::generate();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let store = Store::open(&url, key.clone()).await.unwrap();

    let setups = start_all(DAEMONS, &runtime, &url, &key, |_| data.clone());
    let path = data.join(SECRETS_FILE);
    let generated: Vec<_> = setups.iter().filter_map(|s| s.generated()).collect();
    assert_eq!(generated, [path.as_path()], "{setups:?}");
    assert!(
        setups
            .iter()
            .all(|s| s.generated().is_some() || *s == SecretsSetup::Stored),
        "{setups:?}"
    );
    // One complete file, the one the store accepts; no temporary left.
    let secrets = ApiSecrets::load(&path).unwrap();
    assert_eq!(stored_pair(&store).await, pair_of(&secrets));
    assert_eq!(files_in(&data), [SECRETS_FILE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_starting_at_once_on_one_store_agree_on_one_pair() {
    let url = ward_store::testing::fresh_postgres_database()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = TempDir::new().unwrap();
    let key = MasterKey::generate();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let dirs: Vec<PathBuf> = (0..DAEMONS)
        .map(|i| dir.path().join(format!("d{i}")))
        .collect();
    let store = Store::open(&url, key.clone()).await.unwrap();

    let setups = start_all(DAEMONS, &runtime, &url, &key, |i| dirs[i].clone());
    let winners: Vec<usize> = (0..DAEMONS)
        .filter(|&i| setups[i].generated().is_some())
        .collect();
    assert_eq!(winners.len(), 1, "{setups:?}");
    let winner = winners[0];
    let secrets = ApiSecrets::load(&dirs[winner].join(SECRETS_FILE)).unwrap();
    assert_eq!(stored_pair(&store).await, pair_of(&secrets));
    for (i, setup) in setups.iter().enumerate().filter(|(i, _)| *i != winner) {
        // The others found the winner's pair stored, or removed the pair
        // the store refused and say whose secrets the API takes.
        match setup {
            SecretsSetup::Stored => {}
            SecretsSetup::Elsewhere { stale: None } => {
                assert!(setup.notice().unwrap().contains("another daemon"));
            }
            other => panic!("daemon {i}: {other:?}"),
        }
        assert!(!dirs[i].join(SECRETS_FILE).exists());
    }

    // A loser restarted with a file of other secrets is warned at start;
    // with the winner's file it is quiet.
    let loser = (winner + 1) % DAEMONS;
    let stale = dirs[loser].join(SECRETS_FILE);
    let other = ApiSecrets::generate();
    std::fs::create_dir_all(&dirs[loser]).unwrap();
    std::fs::write(
        &stale,
        format!(
            "user = \"{}\"\norganization = \"{}\"\n",
            other.user, other.organization
        ),
    )
    .unwrap();
    let restarted = daemon(&runtime, &url, &key, &dirs[loser]).await;
    let setup = ensure_api_secrets(&restarted).await.unwrap();
    assert_eq!(
        setup,
        SecretsSetup::Elsewhere {
            stale: Some(stale.clone())
        }
    );
    assert!(setup.notice().unwrap().starts_with("WARNING"));
    std::fs::copy(dirs[winner].join(SECRETS_FILE), &stale).unwrap();
    assert_eq!(
        ensure_api_secrets(&restarted).await.unwrap(),
        SecretsSetup::Stored
    );
    assert_eq!(stored_pair(&store).await, pair_of(&secrets));
}
