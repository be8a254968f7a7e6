//! Sink metrics, registered into the daemon's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SinkLabel {
    pub sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FailureLabels {
    pub sink: String,
    pub kind: String,
}

/// Counters and gauges the delivery tasks keep up to date.
#[derive(Debug, Clone, Default)]
pub struct SinkMetrics {
    pub(crate) delivered: Family<SinkLabel, Counter>,
    pub(crate) batches: Family<SinkLabel, Counter>,
    pub(crate) failures: Family<FailureLabels, Counter>,
    pub(crate) lag_events: Family<SinkLabel, Gauge>,
    pub(crate) lag_seconds: Family<SinkLabel, Gauge>,
    pub(crate) dead_letter: Family<SinkLabel, Gauge>,
}

impl SinkMetrics {
    /// Registers every sink metric (prefixed `ward_sink_` by the caller's
    /// `ward` prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sink_delivered_events",
            "Events a sink acknowledged (re-sent events count again)",
            self.delivered.clone(),
        );
        registry.register(
            "sink_batches",
            "Batches a sink acknowledged",
            self.batches.clone(),
        );
        registry.register(
            "sink_failures",
            "Batches a sink did not acknowledge, by kind (transient, permanent)",
            self.failures.clone(),
        );
        registry.register(
            "sink_lag_events",
            "Events stored but not yet acknowledged by the sink",
            self.lag_events.clone(),
        );
        registry.register(
            "sink_lag_seconds",
            "Age of the oldest event the sink has not acknowledged",
            self.lag_seconds.clone(),
        );
        registry.register(
            "sink_dead_letter",
            "1 while the sink is held in dead-letter",
            self.dead_letter.clone(),
        );
    }

    pub(crate) fn label(sink: &str) -> SinkLabel {
        SinkLabel {
            sink: sink.to_owned(),
        }
    }

    pub(crate) fn failed(&self, sink: &str, kind: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                sink: sink.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }
}
