//! The process's metrics (Prometheus/OpenMetrics, with prometheus-client): HTTP requests by
//! route template, outbound calls and circuit breakers. Requests are counted by route template
//! (`/seiapi/v3/trans/WorkOrder/{num}`), never by raw path, so the number of series stays bounded
//! whatever clients send. `api::metrics` serves them at `GET /metrics` and counts requests.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundLabels {
    entity: String,
    host: String,
    interface: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    entity: String,
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitLabels {
    entity: String,
    host: String,
    interface: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric of the process; handles are cheap clones of shared counters.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: HistogramFamily<RouteLabels>,
    outbound_calls: Family<OutboundLabels, Counter>,
    outbound_latency: HistogramFamily<EndpointLabels>,
    breaker_state: Family<CircuitLabels, Gauge>,
    /// Outbound notifications (`crate::notify`).
    pub notify: crate::notify::metrics::NotifyMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("revisit");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let http_latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            http_latency.clone(),
        );
        let outbound_calls = Family::<OutboundLabels, Counter>::default();
        registry.register(
            "outbound_calls",
            "Calls to third-party schedulers, by entity, endpoint host, interface and outcome",
            outbound_calls.clone(),
        );
        let outbound_latency: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "outbound_call_duration_seconds",
            "Duration of calls to third-party schedulers, by entity and endpoint host",
            outbound_latency.clone(),
        );
        let breaker_state = Family::<CircuitLabels, Gauge>::default();
        registry.register(
            "outbound_circuit_state",
            "Circuit breaker per entity, endpoint host and interface: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        let notify = crate::notify::metrics::NotifyMetrics::register(&mut registry);
        Self {
            notify,
            registry,
            http_requests,
            http_latency,
            outbound_calls,
            outbound_latency,
            breaker_state,
        }
    }

    pub(crate) fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.http_latency
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
    }

    pub(crate) fn observe_outbound(
        &self,
        entity: &str,
        host: &str,
        interface: &str,
        outcome: &str,
        seconds: f64,
    ) {
        self.outbound_calls
            .get_or_create(&OutboundLabels {
                entity: entity.to_string(),
                host: host.to_string(),
                interface: interface.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.outbound_latency
            .get_or_create(&EndpointLabels {
                entity: entity.to_string(),
                host: host.to_string(),
            })
            .observe(seconds);
    }

    pub(crate) fn set_circuit_state(&self, entity: &str, host: &str, interface: &str, state: i64) {
        self.breaker_state
            .get_or_create(&CircuitLabels {
                entity: entity.to_string(),
                host: host.to_string(),
                interface: interface.to_string(),
            })
            .set(state);
    }

    /// The text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
