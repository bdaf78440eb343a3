//! `GET /metrics`: the process's metrics in the Prometheus (OpenMetrics) text format, without a
//! token. Requests are counted by route template (`/seiapi/v3/trans/WorkOrder/{num}`), never by
//! raw path, so the number of series stays bounded whatever clients send.

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
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

use crate::{app::AppState, error::ApiError};

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
    breaker_state: Family<EndpointLabels, Gauge>,
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
        let breaker_state = Family::<EndpointLabels, Gauge>::default();
        registry.register(
            "outbound_circuit_state",
            "Circuit breaker per entity and endpoint host: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        Self {
            registry,
            http_requests,
            http_latency,
            outbound_calls,
            outbound_latency,
            breaker_state,
        }
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
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

    pub fn observe_outbound(
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

    pub fn set_circuit_state(&self, entity: &str, host: &str, state: i64) {
        self.breaker_state
            .get_or_create(&EndpointLabels {
                entity: entity.to_string(),
                host: host.to_string(),
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

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = state.metrics.encode().map_err(ApiError::internal)?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(resp)
}

/// Middleware: counts and times every request by its route template (`unmatched` for requests
/// no route matched).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Methods outside the standard set are one label value, so odd clients add no series.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_string(),
        _ => "OTHER".to_string(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let resp = next.run(req).await;
    metrics.observe_http(
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}
