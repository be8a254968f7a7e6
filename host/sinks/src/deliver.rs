//! One delivery task per sink: read a batch after the cursor, render,
//! deliver, and only then move the cursor.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio_util::sync::CancellationToken;
use ward_ocsf::ActionGlob;
use ward_store::{SeqQuery, SequencedEvent, Store};

use crate::file::FileSink;
use crate::http::{HttpSink, Item, Refusal};
use crate::metrics::SinkMetrics;
use crate::render::{Renderer, event_key};
use crate::{SinkConfig, SinkKind};

/// How often an idle sink looks for new events.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often a sink held in dead-letter looks whether it was resumed.
const RESUME_POLL: Duration = Duration::from_secs(1);
/// Lag gauges are refreshed at most this often (a COUNT over the backlog).
const LAG_EVERY: Duration = Duration::from_secs(2);

enum Target {
    File(Option<Arc<Mutex<FileSink>>>),
    Http(HttpSink),
}

pub(crate) struct Task {
    config: SinkConfig,
    store: Store,
    renderer: Renderer,
    target: Target,
    actions: Vec<ActionGlob>,
    metrics: SinkMetrics,
    token: CancellationToken,
}

impl Task {
    pub(crate) fn new(
        config: SinkConfig,
        store: Store,
        renderer: Renderer,
        metrics: SinkMetrics,
        token: CancellationToken,
    ) -> Result<Task, crate::SinkError> {
        let target = match config.kind {
            SinkKind::File => Target::File(None),
            SinkKind::Http => Target::Http(HttpSink::new(&config, store.clone())?),
        };
        let mut actions = Vec::new();
        for pattern in &config.filter.actions {
            actions.push(
                ActionGlob::new(pattern).ok_or_else(|| crate::SinkError::Config {
                    sink: config.name.clone(),
                    message: format!("filter.actions: pattern {pattern:?} cannot be compiled"),
                })?,
            );
        }
        Ok(Task {
            config,
            store,
            renderer,
            target,
            actions,
            metrics,
            token,
        })
    }

    /// Sleeps unless shut down first; false when shut down.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.token.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.backoff_base_ms;
        let exp = base.saturating_mul(1u64 << attempt.min(20));
        let capped = exp.min(self.config.backoff_max_ms);
        let jitter = rand::thread_rng().gen_range(0..=capped / 4);
        Duration::from_millis(capped - capped / 8 + jitter)
    }

    pub(crate) async fn run(mut self) {
        let name = self.config.name.clone();
        let label = SinkMetrics::label(&name);
        let mut cursor = loop {
            match self.store.sink_state(&name).await {
                Ok(state) if state.dead_letter => match self.wait_resumed().await {
                    Some(c) => break c,
                    None => return,
                },
                Ok(state) => break state.cursor_seq,
                Err(e) => {
                    tracing::warn!(sink = %name, error = %e, "cannot read the sink's cursor; retrying");
                    if !self.pause(RESUME_POLL).await {
                        return;
                    }
                }
            }
        };
        let mut attempt = 0u32;
        let mut lag_at: Option<Instant> = None;
        while !self.token.is_cancelled() {
            if lag_at.is_none_or(|t| t.elapsed() >= LAG_EVERY) {
                self.refresh_lag(cursor).await;
                lag_at = Some(Instant::now());
            }
            let query = SeqQuery {
                after_seq: cursor,
                instances: self.config.filter.instances.clone(),
                since_ms: None,
                limit: self.config.batch_size,
            };
            let batch = match self.store.events_after_seq(&query).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(sink = %name, error = %e, "cannot read events to deliver; retrying");
                    if !self.pause(RESUME_POLL).await {
                        return;
                    }
                    continue;
                }
            };
            let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                self.metrics.lag_events.get_or_create(&label).set(0);
                self.metrics.lag_seconds.get_or_create(&label).set(0);
                self.idle_tick();
                if !self.pause(IDLE_POLL).await {
                    return;
                }
                continue;
            };
            let (first, last) = (first.seq, last.seq);
            let selected: Vec<&SequencedEvent> = batch
                .iter()
                .filter(|e| {
                    self.actions.is_empty()
                        || self.actions.iter().any(|g| g.matches(&e.event.action))
                })
                .collect();
            let outcome = if selected.is_empty() {
                Ok(())
            } else {
                let token = self.token.clone();
                tokio::select! {
                    _ = token.cancelled() => return,
                    r = self.deliver(&selected, first, last) => r,
                }
            };
            match outcome {
                Ok(()) => {
                    let n = selected.len() as u64;
                    if let Err(e) = self.store.ack_sink(&name, last, n).await {
                        // Delivered but not recorded: the batch goes again
                        // (a duplicate, never a loss).
                        tracing::warn!(sink = %name, error = %e, "cannot record the acknowledgement; the batch will be sent again");
                        if !self.pause(RESUME_POLL).await {
                            return;
                        }
                        continue;
                    }
                    cursor = last;
                    attempt = 0;
                    self.metrics.delivered.get_or_create(&label).inc_by(n);
                    self.metrics.batches.get_or_create(&label).inc();
                }
                Err(Refusal::Transient {
                    message,
                    retry_after,
                }) => {
                    tracing::warn!(sink = %name, error = %message, "delivery failed; retrying (events wait in the store)");
                    self.metrics.failed(&name, "transient");
                    let _ = self.store.sink_failed(&name, &message, false).await;
                    let delay = retry_after.unwrap_or_else(|| self.backoff(attempt));
                    attempt = attempt.saturating_add(1);
                    self.refresh_lag(cursor).await;
                    lag_at = Some(Instant::now());
                    if !self.pause(delay).await {
                        return;
                    }
                }
                Err(Refusal::Permanent { message }) => {
                    let message = format!(
                        "{message}; the batch of events {first}..={last} was refused, delivery holds here \
                         (dead-letter): fix the receiver or the sink, then `ward sinks resume {name}`"
                    );
                    tracing::error!(sink = %name, error = %message, "sink refused a batch permanently");
                    self.metrics.failed(&name, "permanent");
                    let _ = self.store.sink_failed(&name, &message, true).await;
                    match self.wait_resumed().await {
                        Some(c) => {
                            cursor = c;
                            attempt = 0;
                        }
                        None => return,
                    }
                }
            }
        }
    }

    /// Holds while the sink is in dead-letter; the cursor once resumed,
    /// `None` on shutdown.
    async fn wait_resumed(&self) -> Option<i64> {
        let label = SinkMetrics::label(&self.config.name);
        self.metrics.dead_letter.get_or_create(&label).set(1);
        loop {
            if let Ok(state) = self.store.sink_state(&self.config.name).await
                && !state.dead_letter
            {
                self.metrics.dead_letter.get_or_create(&label).set(0);
                return Some(state.cursor_seq);
            }
            if !self.pause(RESUME_POLL).await {
                return None;
            }
        }
    }

    async fn refresh_lag(&self, cursor: i64) {
        let label = SinkMetrics::label(&self.config.name);
        if let Ok(lag) = self
            .store
            .sink_lag(cursor, &self.config.filter.instances)
            .await
        {
            let secs = lag
                .oldest_ingested_ms
                .map_or(0, |t| (crate::now_ms() - t).max(0) / 1000);
            self.metrics
                .lag_events
                .get_or_create(&label)
                .set(i64::try_from(lag.events).unwrap_or(i64::MAX));
            self.metrics.lag_seconds.get_or_create(&label).set(secs);
        }
    }

    fn idle_tick(&self) {
        if let Target::File(Some(sink)) = &self.target
            && let Ok(mut sink) = sink.lock()
            && let Err(e) = sink.rotate_if_due()
        {
            tracing::warn!(sink = %self.config.name, error = %e, "cannot rotate the sink's file");
        }
    }

    async fn deliver(
        &mut self,
        events: &[&SequencedEvent],
        first: i64,
        last: i64,
    ) -> Result<(), Refusal> {
        let mut items = Vec::with_capacity(events.len());
        for e in events {
            let body = self
                .renderer
                .render(self.config.format, &e.event)
                .await
                .map_err(|err| Refusal::Transient {
                    message: err.to_string(),
                    retry_after: None,
                })?;
            items.push(Item {
                key: event_key(&e.event),
                time_ms: e.event.time_ms,
                body,
            });
        }
        match &mut self.target {
            Target::Http(http) => http.send(&items, first, last).await,
            Target::File(slot) => {
                let sink = match slot {
                    Some(s) => s.clone(),
                    None => {
                        let dir = self.config.path.clone().unwrap_or_default();
                        let (name, bytes, secs) = (
                            self.config.name.clone(),
                            self.config.rotate_bytes,
                            self.config.rotate_secs,
                        );
                        let opened = tokio::task::spawn_blocking(move || {
                            FileSink::open(&dir, &name, bytes, secs)
                        })
                        .await
                        .map_err(|e| file_error(&e))?
                        .map_err(|e| file_error(&e))?;
                        slot.insert(Arc::new(Mutex::new(opened))).clone()
                    }
                };
                let mut lines = Vec::with_capacity(items.len());
                for item in &items {
                    lines.push(serde_json::to_vec(&item.body).map_err(|e| file_error(&e))?);
                }
                tokio::task::spawn_blocking(move || match sink.lock() {
                    Ok(mut sink) => sink.write(&lines),
                    Err(_) => Err(std::io::Error::other("the file sink's lock was poisoned")),
                })
                .await
                .map_err(|e| file_error(&e))?
                .map_err(|e| file_error(&e))
            }
        }
    }
}

fn file_error(e: &dyn std::fmt::Display) -> Refusal {
    Refusal::Transient {
        message: format!(
            "cannot write the sink's file: {e}; check the directory's permissions and free space"
        ),
        retry_after: None,
    }
}
