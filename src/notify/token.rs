//! OAuth2 client-credentials tokens for outbound notifications: fetched from
//! `Authentication.URL` through the gateway, cached until shortly before they expire, fetched
//! once for all the deliveries that need one at the same moment, and forgotten on a 401.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::http::{HeaderValue, header};
use serde_json::Value;

use super::config::OAuth2;
use crate::gateway::{Gateway, plain::PlainCall};

/// A token's lifetime when the answer gives none ([Revisit]).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

type Slot = Arc<tokio::sync::Mutex<Option<(String, Instant)>>>;

/// The cache: one slot per (entity, token endpoint, request).
#[derive(Default)]
pub(super) struct Tokens {
    slots: Mutex<HashMap<String, Slot>>,
}

fn key(entity: &str, auth: &OAuth2) -> String {
    let mut k = format!("{entity}\u{1f}{}", auth.url);
    for (n, v) in auth.request.iter().chain(&auth.headers) {
        k.push('\u{1f}');
        k.push_str(n);
        k.push('=');
        k.push_str(v);
    }
    k
}

impl Tokens {
    fn slot(&self, entity: &str, auth: &OAuth2) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key(entity, auth)).or_default().clone()
    }

    /// A valid token, and whether it was fetched just now. The error names the token endpoint's
    /// host, never the credentials.
    pub(super) async fn get(
        &self,
        gateway: &Gateway,
        entity: &str,
        auth: &OAuth2,
    ) -> Result<(String, bool), String> {
        let slot = self.slot(entity, auth);
        let mut held = slot.lock().await;
        if let Some((token, until)) = &*held
            && Instant::now() < *until
        {
            return Ok((token.clone(), false));
        }
        let (token, lifetime) = fetch(gateway, entity, auth).await?;
        // Renewed a little before it expires, so that no request carries a token about to lapse.
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        *held = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok((token, true))
    }

    /// Forgets the cached token (the receiver answered 401).
    pub(super) fn forget(&self, entity: &str, auth: &OAuth2) {
        let slot = self.slot(entity, auth);
        if let Ok(mut held) = slot.try_lock() {
            *held = None;
        }
    }
}

async fn fetch(
    gateway: &Gateway,
    entity: &str,
    auth: &OAuth2,
) -> Result<(String, Duration), String> {
    let host = crate::gateway::endpoint_host(&auth.url);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(auth.request.iter())
        .finish();
    let mut headers = super::typed_headers(&auth.headers);
    headers.push((header::ACCEPT, HeaderValue::from_static("application/json")));
    let answer = gateway
        .post_plain(PlainCall {
            entity,
            purpose: "oauth_token",
            url: &auth.url,
            headers,
            content_type: "application/x-www-form-urlencoded",
            body: form.into(),
        })
        .await
        .map_err(|e| format!("token endpoint: {}", super::describe(&e)))?;
    if !answer.status.is_success() {
        return Err(format!(
            "the token endpoint {host} answered {}",
            answer.status.as_u16()
        ));
    }
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|_| format!("the token endpoint {host} answered with a body that is not JSON"))?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("the token endpoint {host} answered without an access_token"))?;
    let lifetime = body
        .get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LIFETIME);
    Ok((token.to_string(), lifetime))
}
