//! Prometheus metrics. Counters are bumped by the scheduler as work
//! happens; gauges that describe the store (instances by status, events
//! stored, lag) are set from fresh readings at scrape time, so they are
//! never stale and cost nothing between scrapes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    call: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EgressLabels {
    plugin: String,
    allowed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OneInstance {
    instance: String,
}

/// What a scrape reads from the store and the scheduler.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Instances by status name (`connecting`, `connected`, `error`, `disabled`).
    pub instances_by_status: BTreeMap<String, u64>,
    /// Events stored per instance id.
    pub events_stored: BTreeMap<String, u64>,
    /// Lag behind the provider per instance id, in seconds.
    pub lag_secs: BTreeMap<String, i64>,
}

/// The daemon's metrics registry.
pub struct Metrics {
    // Scrapes reset the gauge families before refilling them; the lock keeps
    // two scrapes from interleaving.
    registry: Mutex<Registry>,
    pages: Family<InstanceLabels, Counter>,
    new_events: Family<InstanceLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    egress: Family<EgressLabels, Counter>,
    instances: Family<StatusLabels, Gauge>,
    events_stored: Family<OneInstance, Gauge>,
    lag: Family<OneInstance, Gauge>,
    leases_held: Gauge,
    leases_claimed: Counter,
    leases_lost: Counter,
    fenced_commits: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every Ward metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ward");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            pages: Family::default(),
            new_events: Family::default(),
            calls: Family::default(),
            egress: Family::default(),
            instances: Family::default(),
            events_stored: Family::default(),
            lag: Family::default(),
            leases_held: Gauge::default(),
            leases_claimed: Counter::default(),
            leases_lost: Counter::default(),
            fenced_commits: Counter::default(),
        };
        registry.register(
            "pages_committed",
            "Audit pages committed (events and cursor in one transaction)",
            m.pages.clone(),
        );
        registry.register(
            "events_ingested",
            "Events newly stored (duplicates not counted)",
            m.new_events.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls finished, by call and outcome",
            m.calls.clone(),
        );
        registry.register(
            "egress_requests",
            "Outbound requests plugins made or attempted, allowed or denied",
            m.egress.clone(),
        );
        registry.register("instances", "Instances by status", m.instances.clone());
        registry.register(
            "events_stored",
            "Events stored per instance",
            m.events_stored.clone(),
        );
        registry.register(
            "lag_seconds",
            "How far an instance is behind the provider",
            m.lag.clone(),
        );
        registry.register(
            "leases_held",
            "Instance leases this daemon holds",
            m.leases_held.clone(),
        );
        registry.register(
            "leases_claimed",
            "Instance leases this daemon claimed",
            m.leases_claimed.clone(),
        );
        registry.register(
            "leases_lost",
            "Instance leases this daemon lost to another daemon (it stalled past the TTL)",
            m.leases_lost.clone(),
        );
        registry.register(
            "fenced_commits",
            "Page commits refused because this daemon no longer held the instance's lease",
            m.fenced_commits.clone(),
        );
        if let Ok(mut slot) = m.registry.lock() {
            *slot = registry;
        }
        m
    }

    /// Registers more metrics (e.g. the sinks') into the same exposition.
    pub fn register_with(&self, f: impl FnOnce(&mut Registry)) {
        if let Ok(mut registry) = self.registry.lock() {
            f(&mut registry);
        }
    }

    /// A page of audit events was committed for an instance.
    pub fn page_committed(&self, instance: &str, plugin: &str, new_events: u64) {
        let labels = InstanceLabels {
            instance: instance.to_owned(),
            plugin: plugin.to_owned(),
        };
        self.pages.get_or_create(&labels).inc();
        self.new_events.get_or_create(&labels).inc_by(new_events);
    }

    /// The daemon now holds `held` leases, `claimed` of them new and
    /// `lost` taken over by another daemon since the last heartbeat.
    pub fn leases(&self, held: usize, claimed: usize, lost: usize) {
        self.leases_held
            .set(i64::try_from(held).unwrap_or(i64::MAX));
        self.leases_claimed.inc_by(claimed as u64);
        self.leases_lost.inc_by(lost as u64);
    }

    /// A page commit was refused by fencing.
    pub fn fenced_commit(&self) {
        self.fenced_commits.inc();
    }

    /// A plugin call finished; `outcome` is e.g. `ok`, `unauthorized`,
    /// `rate-limited`, `timeout`.
    pub fn call_finished(&self, plugin: &str, call: &str, outcome: &str) {
        self.calls
            .get_or_create(&CallLabels {
                plugin: plugin.to_owned(),
                call: call.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A plugin made (allowed) or attempted (denied) an outbound request.
    pub fn egress(&self, plugin: &str, allowed: bool) {
        self.egress
            .get_or_create(&EgressLabels {
                plugin: plugin.to_owned(),
                allowed: allowed.to_string(),
            })
            .inc();
    }

    /// Renders the Prometheus text exposition with the gauges set from
    /// `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let Ok(registry) = self.registry.lock() else {
            return String::new();
        };
        self.instances.clear();
        self.events_stored.clear();
        self.lag.clear();
        for status in ["connecting", "connected", "error", "disabled"] {
            let n = snapshot
                .instances_by_status
                .get(status)
                .copied()
                .unwrap_or(0);
            self.instances
                .get_or_create(&StatusLabels {
                    status: status.to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for (instance, n) in &snapshot.events_stored {
            self.events_stored
                .get_or_create(&OneInstance {
                    instance: instance.clone(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        for (instance, secs) in &snapshot.lag_secs {
            self.lag
                .get_or_create(&OneInstance {
                    instance: instance.clone(),
                })
                .set(*secs);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
