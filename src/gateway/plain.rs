//! Plain outbound requests through the one client, for what is not a scheduler interface:
//! outbound notifications and the OAuth2 token requests they need (`crate::notify`). The same
//! guarantees as [`Gateway::call`]: SSRF guard, no proxy, no redirect, connect timeout and total
//! deadline, answer size cap, a circuit breaker per (entity, endpoint, purpose), metrics; but
//! the headers are the caller's and the answer is returned whatever its content.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use url::Url;

use super::{Gateway, GatewayError, Guard, endpoint_host, ssrf};

/// One request to make.
pub(crate) struct PlainCall<'a> {
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
pub(crate) struct PlainAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: axum::body::Bytes,
}

impl Gateway {
    /// POSTs the request and returns the answer (any status), or why there is none. A 5xx or
    /// a 429 counts against the circuit.
    pub(crate) async fn post_plain(
        &self,
        call: PlainCall<'_>,
    ) -> Result<PlainAnswer, GatewayError> {
        let host = endpoint_host(call.url);
        let guard = Guard {
            entity: call.entity,
            url: call.url,
            host: &host,
            purpose: call.purpose,
            deadline: self.settings.timeout,
            ok: |s| s.is_success(),
            failure: |s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS,
        };
        self.guarded(
            guard,
            |r: &PlainAnswer| r.status,
            self.plain_exchange(&call, &host),
        )
        .await
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
