//! The one outbound HTTP client: the only way Revisit calls a third party (README, "Pass-through").
//!
//! Guarantees, whatever the third party does:
//! - no environment proxy, no redirect followed (a 3xx is a 502), connect timeout (2 s by
//!   default) and a total deadline per call (10 s, or the entity's `RestApi.TimeoutMs`) that
//!   covers connecting, sending and reading the whole answer;
//! - the answer is read chunk by chunk and abandoned past the cap (1 MiB by default): a 502;
//! - endpoints on non-public addresses are refused before any packet leaves ([`ssrf`]);
//! - a circuit breaker per (entity, endpoint `host[:port]`, interface) fails fast while an
//!   endpoint keeps failing ([`breaker`]);
//! - an appointment search may be retried once after a connection failure (it changes nothing);
//!   a booking never is here: it carries an `Idempotency-Key`, and whether to send it again (with
//!   the same key) is `crate::booking`'s decision;
//! - the body is sent as given and the answer kept as received (bytes and content type), so that
//!   a valid answer is relayed byte for byte;
//! - every failure becomes a [`GatewayError`] whose message names the endpoint's host, never
//!   the URI's path, query or credentials, nor the caller's token.

pub mod breaker;
pub mod plain;
pub(crate) mod ssrf;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use url::Url;

use self::breaker::{Breakers, Outcome};
use crate::{config::OutboundConfig, metrics::Metrics};

/// The two interfaces a third-party scheduler implements (docs/api.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// Appointment Search: read-only, so safe to retry after a connection failure.
    OpenSlots,
    /// Book Job: never retried once sent.
    Followup,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::OpenSlots => "openslots",
            Interface::Followup => "followup",
        }
    }

    /// Checks that a 200 answer is the documented object.
    fn check(self, body: &Value) -> Result<(), &'static str> {
        match self {
            Interface::OpenSlots => match body.get("TimeConstraints") {
                Some(Value::Array(_)) if body.is_object() => Ok(()),
                _ => Err("an object with a TimeConstraints array"),
            },
            Interface::Followup => match body.get("OrderNum") {
                Some(Value::String(s)) if !s.is_empty() => Ok(()),
                _ => Err("an object with a non-empty string OrderNum"),
            },
        }
    }
}

/// One call to make.
pub struct OutboundCall<'a> {
    /// The entity on whose behalf the call is made (breaker key, metrics).
    pub entity: &'a str,
    pub interface: Interface,
    pub url: &'a Url,
    /// The caller's JWT, forwarded as `x-access-token` (the platform's documented behaviour).
    pub token: &'a str,
    pub request_id: &'a str,
    /// The JSON body, as it is to be sent.
    pub body: &'a [u8],
    /// Sent as `Idempotency-Key` (Book Job: the same on every attempt of one booking).
    pub idempotency_key: Option<&'a str>,
    /// Overrides the configured total deadline (the entity's `RestApi.TimeoutMs`).
    pub timeout: Option<Duration>,
}

/// The third party's answer, to relay unchanged: a 200 holding the documented object, or any
/// other status with a JSON body.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub status: StatusCode,
    /// The answer as parsed (it was checked to be JSON, and for a 200 the documented object).
    pub body: Value,
    /// The answer as received, relayed byte for byte.
    pub raw: axum::body::Bytes,
    pub content_type: Option<HeaderValue>,
}

/// Why a call produced no answer to relay. Each message names the endpoint host and nothing
/// more sensitive.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the endpoint {host} is not allowed: {reason}")]
    Refused { host: String, reason: String },
    #[error("the scheduler at {host} could not be reached: {reason}")]
    Unreachable {
        host: String,
        reason: &'static str,
        /// Whether the request may have been sent (the connection broke after connecting).
        sent: bool,
    },
    #[error("the scheduler at {host} did not answer within {} ms", after.as_millis())]
    Timeout { host: String, after: Duration },
    #[error("the answer of the scheduler at {host} exceeds {limit} bytes")]
    TooLarge { host: String, limit: usize },
    #[error("the scheduler at {host} answered with a redirect ({status}), which is not followed")]
    Redirect { host: String, status: u16 },
    #[error("the scheduler at {host} answered {status} with a body that is not JSON")]
    NotJson { host: String, status: u16 },
    #[error("the scheduler at {host} answered 200 without the documented object ({expected})")]
    Invalid {
        host: String,
        expected: &'static str,
    },
    #[error("calls to the scheduler at {host} are suspended after repeated failures")]
    CircuitOpen { host: String, retry_after: Duration },
}

impl GatewayError {
    /// Whether the request may have reached the third party, which may then have acted on it (a
    /// booking whose outcome is unknown); `false` when it certainly never left.
    pub(crate) fn may_have_reached(&self) -> bool {
        match self {
            GatewayError::Refused { .. } | GatewayError::CircuitOpen { .. } => false,
            GatewayError::Unreachable { sent, .. } => *sent,
            GatewayError::Timeout { .. }
            | GatewayError::TooLarge { .. }
            | GatewayError::Redirect { .. }
            | GatewayError::NotJson { .. }
            | GatewayError::Invalid { .. } => true,
        }
    }

    /// The label of the outcome in metrics.
    fn label(&self) -> &'static str {
        match self {
            GatewayError::Refused { .. } => "refused_address",
            GatewayError::Unreachable { .. } => "unreachable",
            GatewayError::Timeout { .. } => "timeout",
            GatewayError::TooLarge { .. } => "too_large",
            GatewayError::Redirect { .. } => "redirect",
            GatewayError::NotJson { .. } => "not_json",
            GatewayError::Invalid { .. } => "invalid_answer",
            GatewayError::CircuitOpen { .. } => "circuit_open",
        }
    }
}

/// One call as its guards, its circuit and the metrics see it.
struct Guard<'a> {
    entity: &'a str,
    url: &'a Url,
    /// `host[:port]` of `url`.
    host: &'a str,
    /// What the call is for: names its circuit and its metrics.
    purpose: &'static str,
    deadline: Duration,
    /// The status of the answer asked for (`ok` in the metrics).
    ok: fn(StatusCode) -> bool,
    /// The statuses that count against the circuit.
    failure: fn(StatusCode) -> bool,
}

/// The outbound client, shared by every entity.
pub struct Gateway {
    client: reqwest::Client,
    settings: OutboundConfig,
    breakers: Arc<Breakers>,
    metrics: Arc<Metrics>,
}

/// `host` or `host:port` of a URL: what errors, breakers and metrics name.
pub fn endpoint_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

impl Gateway {
    pub fn new(settings: OutboundConfig, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        // rustls with the ring provider (see Cargo.toml). Installing is process-wide and fails
        // harmlessly when a provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .dns_resolver(ssrf::GuardedResolver::new(settings.allow_private_networks))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("revisit/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let gauge = metrics.clone();
        let breakers = Breakers::new(
            settings.breaker_failures,
            settings.breaker_cooldown,
            move |(entity, host, interface), state| {
                gauge.set_circuit_state(entity, host, interface, state.as_gauge())
            },
        );
        Ok(Self {
            client,
            settings,
            breakers,
            metrics,
        })
    }

    /// Makes the call and returns the answer to relay, or why there is none.
    pub async fn call(&self, call: OutboundCall<'_>) -> Result<Relayed, GatewayError> {
        let host = endpoint_host(call.url);
        let guard = Guard {
            entity: call.entity,
            url: call.url,
            host: &host,
            purpose: call.interface.as_str(),
            deadline: call.timeout.unwrap_or(self.settings.timeout),
            ok: |s| s == StatusCode::OK,
            failure: |s| s.is_server_error(),
        };
        let result = self
            .guarded(guard, |r: &Relayed| r.status, self.exchange(&call, &host))
            .await;
        if let Err(e) = &result {
            tracing::warn!(entity = call.entity, host = %host, interface = call.interface.as_str(), error = %e, "third-party call failed");
        }
        result
    }

    /// Runs `exchange` behind the guards every outbound call has, and measures it: the URL's
    /// literal host is checked against the SSRF policy, the circuit of (entity, host, purpose)
    /// must let the call through and is told how it went, the deadline bounds it; then its
    /// duration and outcome (labelled by the answer's `status`) go to the metrics.
    async fn guarded<T>(
        &self,
        g: Guard<'_>,
        status: impl Fn(&T) -> StatusCode,
        exchange: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let started = Instant::now();
        let result = self.behind_guards(&g, &status, exchange).await;
        let outcome = match result.as_ref().map(&status) {
            Ok(s) if (g.ok)(s) => "ok",
            Ok(s) if s.is_client_error() => "client_error",
            Ok(s) if s.is_server_error() => "server_error",
            Ok(_) => "other_status",
            Err(e) => e.label(),
        };
        self.metrics.observe_outbound(
            g.entity,
            g.host,
            g.purpose,
            outcome,
            started.elapsed().as_secs_f64(),
        );
        result
    }

    async fn behind_guards<T>(
        &self,
        g: &Guard<'_>,
        status: impl Fn(&T) -> StatusCode,
        exchange: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let host = g.host;
        let allow_private = self.settings.allow_private_networks;
        ssrf::check_literal(g.url, allow_private).map_err(|b| GatewayError::Refused {
            host: host.to_string(),
            reason: format!("it is {}, not a public address", b.ip),
        })?;
        let permit = self
            .breakers
            .acquire((g.entity.to_string(), host.to_string(), g.purpose))
            .map_err(|open| GatewayError::CircuitOpen {
                host: host.to_string(),
                retry_after: open.retry_after,
            })?;
        let result = match tokio::time::timeout(g.deadline, exchange).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::Timeout {
                host: host.to_string(),
                after: g.deadline,
            }),
        };
        permit.finish(match &result {
            Ok(r) if (g.failure)(status(r)) => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(GatewayError::Refused { .. }) => Outcome::Neutral,
            Err(_) => Outcome::Failure,
        });
        result
    }

    /// Sends (with the one retry an appointment search allows) and reads the answer.
    async fn exchange(&self, call: &OutboundCall<'_>, host: &str) -> Result<Relayed, GatewayError> {
        let body = axum::body::Bytes::copy_from_slice(call.body);
        let attempts = match call.interface {
            Interface::OpenSlots => 2,
            Interface::Followup => 1,
        };
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let mut req = self
                .client
                .post(call.url.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json")
                .header("x-access-token", header_value(call.token))
                .header("x-request-id", header_value(call.request_id))
                .body(body.clone());
            if let Some(key) = call.idempotency_key {
                req = req.header("idempotency-key", header_value(key));
            }
            match req.send().await {
                Ok(r) => break r,
                Err(e) => {
                    if let Some(b) = ssrf::find_blocked(&e) {
                        return Err(GatewayError::Refused {
                            host: host.to_string(),
                            reason: format!("it resolves to {}, not a public address", b.ip),
                        });
                    }
                    // Only a failure to connect proves the request never left: then, and only
                    // for a search, one more try.
                    if e.is_connect() && attempt < attempts {
                        tracing::info!(
                            host,
                            "connection failed; retrying the appointment search once"
                        );
                        continue;
                    }
                    return Err(unreachable(host, e));
                }
            }
        };
        let status = resp.status();
        if status.is_redirection() {
            return Err(GatewayError::Redirect {
                host: host.to_string(),
                status: status.as_u16(),
            });
        }
        let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
        let raw = axum::body::Bytes::from(self.read_capped(resp, host).await?);
        let parsed: Option<Value> = serde_json::from_slice(&raw).ok();
        let relayed = |body| Relayed {
            status,
            body,
            raw: raw.clone(),
            content_type: content_type.clone(),
        };
        match parsed {
            None => Err(GatewayError::NotJson {
                host: host.to_string(),
                status: status.as_u16(),
            }),
            Some(body) if status == StatusCode::OK => match call.interface.check(&body) {
                Ok(()) => Ok(relayed(body)),
                Err(expected) => Err(GatewayError::Invalid {
                    host: host.to_string(),
                    expected,
                }),
            },
            Some(body) => Ok(relayed(body)),
        }
    }

    /// Reads the body chunk by chunk, giving up as soon as it exceeds the cap.
    async fn read_capped(
        &self,
        mut resp: reqwest::Response,
        host: &str,
    ) -> Result<Vec<u8>, GatewayError> {
        let limit = self.settings.max_response_bytes;
        let too_large = || GatewayError::TooLarge {
            host: host.to_string(),
            limit,
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut buf = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > limit {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buf),
                Err(e) => {
                    tracing::debug!(host, error = %e.without_url(), "reading the answer failed");
                    return Err(GatewayError::Unreachable {
                        host: host.to_string(),
                        reason: "the connection broke while reading the answer",
                        sent: true,
                    });
                }
            }
        }
    }

    /// Whether the outbound policy would let a call to `uri` through, as far as can be told now:
    /// its host literal, and what its name resolves to now (a name that does not resolve is
    /// checked again at call time, as every name is). For a configuration write, so that a
    /// target refused at call time is refused when it is stored.
    pub(crate) async fn check_target(&self, uri: &str) -> Result<(), ssrf::Blocked> {
        let allow_private = self.settings.allow_private_networks;
        let Ok(url) = Url::parse(uri) else {
            return Ok(());
        };
        ssrf::check_literal(&url, allow_private)?;
        if allow_private {
            return Ok(());
        }
        if let Some(url::Host::Domain(name)) = url.host()
            && let Ok(addrs) = tokio::net::lookup_host((name, 0)).await
        {
            for a in addrs {
                if ssrf::is_blocked(a.ip()) {
                    return Err(ssrf::Blocked {
                        host: name.to_string(),
                        ip: a.ip(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The deadline of one call (`timeout` overrides the configured one).
    pub fn deadline(&self, timeout: Option<Duration>) -> Duration {
        timeout.unwrap_or(self.settings.timeout)
    }
}

/// Tokens and request ids arrived as header values, so they are valid ones; anything else is
/// sent empty rather than panicking.
fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A request that got no answer, and whether it may have reached the third party (a broken
/// connection after sending may have; a failed connect has not).
pub(crate) fn unreachable(host: &str, e: reqwest::Error) -> GatewayError {
    let (reason, sent) = if e.is_connect() {
        ("the connection failed", false)
    } else {
        ("the connection broke before an answer", true)
    };
    tracing::debug!(host, error = %e.without_url(), "outbound request failed");
    GatewayError::Unreachable {
        host: host.to_string(),
        reason,
        sent,
    }
}
