//! The metrics of outbound notifications, registered with the process's others
//! (`crate::metrics`).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    entity: String,
    event: String,
}

/// Events pending, delivered, retried and failed; delivery latency from commit to the
/// receiver's answer.
pub struct NotifyMetrics {
    pending: Gauge,
    oldest_pending_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    delivered: Family<EventLabels, Counter>,
    retried: Family<EventLabels, Counter>,
    failed: Family<EventLabels, Counter>,
    latency: Histogram,
}

impl NotifyMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            pending: Gauge::default(),
            oldest_pending_age: Gauge::default(),
            delivered: Family::default(),
            retried: Family::default(),
            failed: Family::default(),
            // 5 ms to about 3 minutes.
            latency: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
        };
        registry.register(
            "notify_events_pending",
            "Outbound notification events waiting for delivery (all entities, all processes)",
            m.pending.clone(),
        );
        registry.register(
            "notify_oldest_pending_age_seconds",
            "Age of the oldest outbound notification event waiting for delivery",
            m.oldest_pending_age.clone(),
        );
        registry.register(
            "notify_events_delivered",
            "Outbound notification events delivered (a 2xx answer), by entity and event",
            m.delivered.clone(),
        );
        registry.register(
            "notify_attempts_retried",
            "Failed delivery attempts that will be retried, by entity and event",
            m.retried.clone(),
        );
        registry.register(
            "notify_events_failed",
            "Outbound notification events given up after the last attempt, by entity and event",
            m.failed.clone(),
        );
        registry.register(
            "notify_delivery_latency_seconds",
            "Time from the commit of an event to its delivery",
            m.latency.clone(),
        );
        m
    }

    fn labels(entity: &str, event: &str) -> EventLabels {
        EventLabels {
            entity: entity.to_string(),
            event: event.to_string(),
        }
    }

    pub(crate) fn set_pending(&self, n: i64, oldest_age_seconds: f64) {
        self.pending.set(n);
        self.oldest_pending_age.set(oldest_age_seconds);
    }

    pub fn delivered(&self, entity: &str, event: &str, latency_seconds: f64) {
        self.delivered
            .get_or_create(&Self::labels(entity, event))
            .inc();
        self.latency.observe(latency_seconds);
    }

    pub fn retried(&self, entity: &str, event: &str) {
        self.retried
            .get_or_create(&Self::labels(entity, event))
            .inc();
    }

    pub fn failed(&self, entity: &str, event: &str) {
        self.failed
            .get_or_create(&Self::labels(entity, event))
            .inc();
    }
}
