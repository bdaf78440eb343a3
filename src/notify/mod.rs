//! Outbound notifications, the platform's `ExportNotifications` (README, "Notifications"): the
//! worker that delivers the events the write transactions put in the outbox
//! (`store/outbox.rs`).
//!
//! Guarantees:
//! - at least once: an event stays pending until a receiver answered 2xx, or its retry window
//!   (24 h by default, counted from its commit or its last replay) has passed; then it is kept as
//!   failed, listed and replayable (`api.rs`);
//! - in order per work order: an event is not sent while an earlier event of its work order is
//!   pending (a failed one no longer holds the later ones back);
//! - one process at a time: an event is leased while it is sent (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL), and a process that dies leaves its leases to expire;
//! - a failing endpoint holds up nothing else: each event waits for its own next attempt
//!   (exponential backoff with jitter, or the receiver's `Retry-After` if later), and the
//!   gateway's breaker makes calls to a dead endpoint fail fast;
//! - every call goes through the one gateway client (SSRF guard, timeouts, size cap, breaker);
//! - each request is signed the Standard Webhooks way (`sign.rs`), with the entity's secret.

pub mod api;
pub mod config;
pub mod metrics;
pub mod sign;
mod token;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::{HeaderName, HeaderValue, StatusCode};
use rand::Rng;
use tokio::task::JoinSet;

use crate::{
    domain::EntityId,
    gateway::{
        Gateway, GatewayError,
        plain::{PlainAnswer, PlainCall},
    },
    metrics::Metrics,
    store::{AttemptEnd, ClaimedEvent, EventKind, FinishedAttempt, Store},
};

/// The worker's settings (`[notify]` in the configuration file, `REVISIT_NOTIFY_*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether this process delivers events (they are recorded either way).
    pub deliver: bool,
    /// How often the outbox is read when no commit of this process woke the worker: what
    /// another process committed (or left when it died) waits at most this long.
    pub poll: Duration,
    /// How long a claimed event is reserved for the process sending it; longer than a call
    /// (token and delivery) can take.
    pub lease: Duration,
    /// The first retry's delay; each further one doubles, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long an event is retried before it is kept as failed.
    pub retry_window: Duration,
    /// Events sent at once by this process.
    pub concurrency: usize,
    /// How long a replaced signing secret still signs (a second signature).
    pub rotation_grace: Duration,
    /// How long delivered and failed events (and their attempts) are kept.
    pub retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            deliver: true,
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            retry_window: Duration::from_secs(24 * 3600),
            concurrency: 128,
            rotation_grace: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The delivery worker of this process.
pub struct Notifier {
    store: Arc<Store>,
    gateway: Arc<Gateway>,
    metrics: Arc<Metrics>,
    settings: Settings,
    /// Names this process's leases.
    node: String,
    tokens: token::Tokens,
    started: std::sync::atomic::AtomicBool,
}

/// How one attempt ended.
enum Attempt {
    Delivered(u16),
    /// Worth another attempt (after `retry_after`, if the receiver said so).
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// Nothing to send it to any more.
    Drop(String),
}

impl Notifier {
    pub fn new(
        store: Arc<Store>,
        gateway: Arc<Gateway>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Self {
            tokens: token::Tokens::default(),
            store,
            gateway,
            metrics,
            settings,
            node: uuid::Uuid::new_v4().simple().to_string(),
            started: Default::default(),
        })
    }

    /// Starts the worker (once; later calls do nothing).
    pub fn start(self: &Arc<Self>) {
        if !self.settings.deliver || self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        tokio::spawn(self.clone().run());
    }

    async fn run(self: Arc<Self>) {
        let wake = self.store.outbox_signal();
        let mut inflight: JoinSet<FinishedAttempt> = JoinSet::new();
        let mut next_gauge = Instant::now();
        let mut next_purge = Instant::now();
        let purge_every = self.settings.retention.min(Duration::from_secs(3600));
        let lease_ms = self.settings.lease.as_millis() as i64;
        let mut done = Vec::new();
        loop {
            // What finished is recorded in one transaction: fewer write turns, which on SQLite
            // every writer of the process shares.
            while let Some(r) = inflight.try_join_next() {
                match r {
                    Ok(f) => done.push(f),
                    Err(e) => tracing::error!(error = %e, "a notification delivery task failed"),
                }
            }
            if let Err(e) = self.store.finish_attempts(&self.node, &done).await {
                // Their leases run out and the events are sent again: at least once.
                tracing::warn!(error = %e, "recording notification attempts failed");
            }
            done.clear();
            let free = self.settings.concurrency.saturating_sub(inflight.len());
            let mut full_batch = false;
            if free > 0 {
                match self
                    .store
                    .claim_events(&self.node, lease_ms, free as i64)
                    .await
                {
                    Ok(events) => {
                        full_batch = events.len() == free;
                        for ev in events {
                            inflight.spawn(self.clone().deliver(ev));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the notification outbox failed"),
                }
            }
            if Instant::now() >= next_gauge {
                next_gauge = Instant::now() + Duration::from_secs(5);
                if let Ok((n, oldest)) = self.store.pending_events().await {
                    let age = oldest.map_or(0.0, |t| {
                        ((crate::store::now_ms() - t).max(0) as f64) / 1000.0
                    });
                    self.metrics.notify.set_pending(n, age);
                }
            }
            if Instant::now() >= next_purge {
                next_purge = Instant::now() + purge_every;
                let before = crate::store::now_ms() - self.settings.retention.as_millis() as i64;
                match self.store.purge_events(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "old notification events removed"),
                    Err(e) => tracing::warn!(error = %e, "removing old notification events failed"),
                }
            }
            if full_batch && inflight.len() < self.settings.concurrency {
                continue;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                Some(r) = inflight.join_next(), if !inflight.is_empty() => {
                    match r {
                        // Recorded with whatever else finished, at the top of the loop.
                        Ok(f) => done.push(f),
                        Err(e) => tracing::error!(error = %e, "a notification delivery task failed"),
                    }
                }
            }
        }
    }

    /// One attempt at `ev`, and what becomes of it.
    async fn deliver(self: Arc<Self>, ev: ClaimedEvent) -> FinishedAttempt {
        let at = crate::store::now_ms();
        let started = Instant::now();
        let attempt = self.attempt(&ev).await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let now = crate::store::now_ms();
        let (status, error, end) = match attempt {
            Attempt::Delivered(status) => {
                let latency = ((now - ev.created_at).max(0) as f64) / 1000.0;
                self.metrics
                    .notify
                    .delivered(&ev.entity_id, &ev.event, latency);
                (Some(status), None, AttemptEnd::Delivered)
            }
            Attempt::Drop(why) => {
                self.metrics.notify.failed(&ev.entity_id, &ev.event);
                (None, Some(why), AttemptEnd::Failed)
            }
            Attempt::Retry {
                status,
                error,
                retry_after,
            } => {
                let window_end = ev.retry_from + self.settings.retry_window.as_millis() as i64;
                if now >= window_end {
                    self.metrics.notify.failed(&ev.entity_id, &ev.event);
                    (status, Some(error), AttemptEnd::Failed)
                } else {
                    self.metrics.notify.retried(&ev.entity_id, &ev.event);
                    let delay = self.backoff(ev.attempts + 1).max(
                        retry_after
                            .unwrap_or_default()
                            .min(self.settings.retry_window),
                    );
                    let next = (now + delay.as_millis() as i64).min(window_end);
                    (status, Some(error), AttemptEnd::RetryAt(next))
                }
            }
        };
        FinishedAttempt {
            event: ev,
            at,
            duration_ms,
            status,
            error,
            end,
        }
    }

    /// The delay before attempt `n + 1` after `n` failed ones: the base doubled `n - 1` times,
    /// capped, then "equal jitter" (half fixed, half random) so that receivers coming back up
    /// are not hit by every retry at once.
    fn backoff(&self, n: i32) -> Duration {
        let exp = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << (n.clamp(1, 31) - 1).min(20))
            .min(self.settings.backoff_max);
        let half = exp / 2;
        half + half.mul_f64(rand::thread_rng().r#gen::<f64>())
    }

    async fn attempt(&self, ev: &ClaimedEvent) -> Attempt {
        let retry = |error: String| Attempt::Retry {
            status: None,
            error,
            retry_after: None,
        };
        let Ok(entity) = EntityId::parse(&ev.entity_id) else {
            return Attempt::Drop("the event's entity is not valid".into());
        };
        let (cfg, secrets) = match self.store.delivery_context(&entity).await {
            Ok(c) => c,
            Err(e) => return retry(format!("reading the configuration failed: {e}")),
        };
        let target = EventKind::parse(&ev.event).and_then(|k| config::target(&cfg, k));
        let Some(target) = target else {
            return Attempt::Drop(format!(
                "ExportNotifications.Notifications.{} is no longer enabled with a URL",
                ev.event
            ));
        };
        let mut signing = vec![secrets.secret.as_str()];
        if let Some(prev) = &secrets.previous_secret
            && crate::store::now_ms() - secrets.rotated_at
                < self.settings.rotation_grace.as_millis() as i64
        {
            signing.push(prev);
        }
        let oauth = config::oauth2(&cfg);
        let mut fresh = false;
        let mut bearer = None;
        if let Some(auth) = &oauth {
            match self.tokens.get(&self.gateway, &ev.entity_id, auth).await {
                Ok((t, f)) => {
                    bearer = Some(t);
                    fresh = f;
                }
                Err(e) => return retry(e),
            }
        }
        let body = axum::body::Bytes::from(ev.payload.clone().into_bytes());
        let mut answer = self
            .send(ev, &target, &signing, bearer.as_deref(), &body)
            .await;
        // A cached token the receiver no longer accepts: one more try with a new one.
        if let (Ok(a), Some(auth)) = (&answer, &oauth)
            && a.status == StatusCode::UNAUTHORIZED
            && !fresh
        {
            self.tokens.forget(&ev.entity_id, auth);
            match self.tokens.get(&self.gateway, &ev.entity_id, auth).await {
                Ok((t, _)) => {
                    answer = self.send(ev, &target, &signing, Some(&t), &body).await;
                }
                Err(e) => return retry(e),
            }
        }
        match answer {
            Ok(a) if a.status.is_success() => Attempt::Delivered(a.status.as_u16()),
            Ok(a) => {
                if a.status == StatusCode::UNAUTHORIZED
                    && let Some(auth) = &oauth
                {
                    self.tokens.forget(&ev.entity_id, auth);
                }
                Attempt::Retry {
                    status: Some(a.status.as_u16()),
                    error: format!("the receiver answered {}", a.status.as_u16()),
                    retry_after: retry_after(&a),
                }
            }
            Err(GatewayError::CircuitOpen { host, retry_after }) => Attempt::Retry {
                status: None,
                error: format!(
                    "calls to {host} are suspended after repeated failures (circuit open)"
                ),
                retry_after: Some(retry_after),
            },
            Err(e) => retry(describe(&e)),
        }
    }

    /// Sends the signed event once.
    async fn send(
        &self,
        ev: &ClaimedEvent,
        target: &config::Target,
        signing: &[&str],
        bearer: Option<&str>,
        body: &axum::body::Bytes,
    ) -> Result<PlainAnswer, GatewayError> {
        let timestamp = jiff::Timestamp::now().as_second();
        let mut headers = typed_headers(&target.headers);
        if let Some(t) = bearer
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
        {
            headers.retain(|(n, _)| n != axum::http::header::AUTHORIZATION);
            headers.push((axum::http::header::AUTHORIZATION, v));
        }
        let signature = sign::header(signing, &ev.id, timestamp, body);
        for (name, value) in [
            ("webhook-id", ev.id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.push((HeaderName::from_static(name), v));
            }
        }
        self.gateway
            .post_plain(PlainCall {
                entity: &ev.entity_id,
                purpose: "webhook",
                url: &target.url,
                headers,
                content_type: "application/json",
                body: body.clone(),
            })
            .await
    }
}

/// `Retry-After` of an answer.
/// Configured headers (a webhook's, a token endpoint's) as the request carries them; a name or
/// value that is not valid in HTTP is left out (the configuration check refuses them anyway).
fn typed_headers(configured: &[(String, String)]) -> Vec<(HeaderName, HeaderValue)> {
    configured
        .iter()
        .filter_map(|(n, v)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect()
}

fn retry_after(a: &PlainAnswer) -> Option<Duration> {
    parse_retry_after(
        a.headers.get("retry-after")?.to_str().ok()?,
        jiff::Timestamp::now(),
    )
}

/// A `Retry-After` value: seconds, or an HTTP date (RFC 9110), as a delay from `now`.
fn parse_retry_after(v: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let ms = at.as_millisecond() - now.as_millisecond();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// Why a call produced no answer, naming the endpoint's host and nothing more.
pub(crate) fn describe(e: &GatewayError) -> String {
    match e {
        GatewayError::Refused { host, reason } => format!("{host} is not allowed: {reason}"),
        GatewayError::Unreachable { host, reason, .. } => format!("{host}: {reason}"),
        GatewayError::Timeout { host, after } => {
            format!("{host} did not answer within {} ms", after.as_millis())
        }
        GatewayError::TooLarge { host, limit } => {
            format!("the answer of {host} exceeds {limit} bytes")
        }
        GatewayError::Redirect { host, status } => {
            format!("{host} answered with a redirect ({status}), which is not followed")
        }
        GatewayError::NotJson { host, status } => format!("{host} answered {status}"),
        GatewayError::Invalid { host, .. } => format!("{host} answered unexpectedly"),
        GatewayError::CircuitOpen { host, .. } => {
            format!("calls to {host} are suspended after repeated failures")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now: jiff::Timestamp = "2015-10-21T07:27:30Z".parse().unwrap();
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
