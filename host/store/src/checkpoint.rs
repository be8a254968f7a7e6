//! SQLite WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that pushes the
//! WAL past its threshold: that commit copies the WAL into the database
//! file and waits on its fsyncs while the instance's next page waits on
//! it. During a 100,000-event backfill about every commit paid for one
//! (~100 fsyncs of ~5 ms on the commit path). The store instead runs a
//! PASSIVE checkpoint (never blocks a writer or a reader) on a connection
//! of its own after commits that wrote events or users, and keeps the
//! automatic checkpoint as a backstop at [`BACKSTOP_PAGES`] should this
//! one fall behind. Durability is unchanged: what a commit wrote is in the
//! WAL either way.

use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// WAL pages past which a committing connection checkpoints itself
/// (SQLite's default: 1,000).
pub(crate) const BACKSTOP_PAGES: u32 = 4096;

/// How long the checkpointer lets further commits gather after a wake-up.
const GATHER: Duration = Duration::from_millis(20);

/// The task that checkpoints the WAL after commits.
pub(crate) struct Checkpointer {
    wake: Arc<Notify>,
    stop: std::sync::Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Checkpointer {
    /// Opens the checkpointer's own connection and starts its task.
    pub(crate) async fn start(options: &SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let mut conn = options.connect().await?;
        let wake = Arc::new(Notify::new());
        let woken = wake.clone();
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    () = woken.notified() => {}
                }
                tokio::time::sleep(GATHER).await;
                if let Err(e) = checkpoint(&mut conn).await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; commits checkpoint themselves past the backstop, check the disk");
                }
            }
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "closing the checkpoint connection");
            }
        });
        Ok(Checkpointer {
            wake,
            stop: std::sync::Mutex::new(Some((stop_tx, task))),
        })
    }

    /// Asks for a checkpoint soon (commits wake it; several coalesce).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the task and closes its connection.
    pub(crate) async fn stop(&self) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((tx, task)) = stop {
            let _ = tx.send(());
            let _ = task.await;
        }
    }
}

async fn checkpoint(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(conn)
        .await
        .map(|_| ())
}
