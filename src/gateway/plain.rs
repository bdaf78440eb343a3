//! Plain outbound requests through the one client, for what is not a scheduler interface:
//! outbound notifications and the OAuth2 token requests they need (`crate::notify`). The same
//! guarantees as [`Gateway::call`]: SSRF guard, no proxy, no redirect, connect timeout and total
//! deadline, answer size cap, a circuit breaker per (entity, endpoint, purpose), metrics; but
//! the headers are the caller's and the answer is returned whatever its content.

use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use url::Url;

use super::{Gateway, GatewayError, breaker::Outcome, endpoint_host, ssrf};

/// One request to make.
pub struct PlainCall<'a> {
    pub entity: &'a str,
    /// What the call is for: names its circuit and its metrics (`webhook`, `oauth_token`).
    pub purpose: &'static str,
    pub url: &'a Url,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub content_type: &'static str,
    pub body: axum::body::Bytes,
}

/// The answer, whatever its status.
#[derive(Debug, Clone)]
pub struct PlainAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: axum::body::Bytes,
}

impl Gateway {
    /// POSTs the request and returns the answer (any status), or why there is none.
    pub async fn post_plain(&self, call: PlainCall<'_>) -> Result<PlainAnswer, GatewayError> {
        let host = endpoint_host(call.url);
        let started = Instant::now();
        let result = self.plain_guarded(&call, &host).await;
        let outcome = match &result {
            Ok(r) if r.status.is_success() => "ok",
            Ok(r) if r.status.is_client_error() => "client_error",
            Ok(r) if r.status.is_server_error() => "server_error",
            Ok(_) => "other_status",
            Err(e) => e.label(),
        };
        self.metrics.observe_outbound(
            call.entity,
            &host,
            call.purpose,
            outcome,
            started.elapsed().as_secs_f64(),
        );
        result
    }

    async fn plain_guarded(
        &self,
        call: &PlainCall<'_>,
        host: &str,
    ) -> Result<PlainAnswer, GatewayError> {
        let allow_private = self.settings.allow_private_networks;
        ssrf::check_literal(call.url, allow_private).map_err(|b| GatewayError::Refused {
            host: host.to_string(),
            reason: format!("it is {}, not a public address", b.ip),
        })?;
        let permit = self
            .breakers
            .acquire((call.entity.to_string(), host.to_string(), call.purpose))
            .map_err(|open| GatewayError::CircuitOpen {
                host: host.to_string(),
                retry_after: open.retry_after,
            })?;
        let deadline = self.settings.timeout;
        let result = match tokio::time::timeout(deadline, self.plain_exchange(call, host)).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::Timeout {
                host: host.to_string(),
                after: deadline,
            }),
        };
        permit.finish(match &result {
            Ok(r) if r.status.is_server_error() || r.status == StatusCode::TOO_MANY_REQUESTS => {
                Outcome::Failure
            }
            Ok(_) => Outcome::Success,
            Err(GatewayError::Refused { .. }) => Outcome::Neutral,
            Err(_) => Outcome::Failure,
        });
        result
    }

    async fn plain_exchange(
        &self,
        call: &PlainCall<'_>,
        host: &str,
    ) -> Result<PlainAnswer, GatewayError> {
        let mut req = self
            .client
            .post(call.url.clone())
            .header(header::CONTENT_TYPE, call.content_type)
            .body(call.body.clone());
        for (name, value) in &call.headers {
            req = req.header(name, value);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(b) = ssrf::find_blocked(&e) {
                    return Err(GatewayError::Refused {
                        host: host.to_string(),
                        reason: format!("it resolves to {}, not a public address", b.ip),
                    });
                }
                return Err(super::unreachable(host, e));
            }
        };
        let status = resp.status();
        if status.is_redirection() {
            return Err(GatewayError::Redirect {
                host: host.to_string(),
                status: status.as_u16(),
            });
        }
        let headers = resp.headers().clone();
        let body = axum::body::Bytes::from(self.read_capped(resp, host).await?);
        Ok(PlainAnswer {
            status,
            headers,
            body,
        })
    }
}
