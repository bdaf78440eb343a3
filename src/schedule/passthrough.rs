//! Pass-through to a company's own scheduler (README, "Pass-through"): the validated request goes
//! to the configured endpoint through the one outbound client, and the third party's status and
//! body come back to be relayed. Recording a booking it confirms is `crate::booking`'s part.

use std::{sync::Arc, time::Duration};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use url::Url;

use super::{Outcome, ScheduleError};
use crate::{
    domain::{
        DomainError,
        bookjob::BookJob,
        sysconfig::EntityConfig,
        workorder::{Carried, WorkOrder},
    },
    gateway::{Gateway, Interface, OutboundCall, Relayed},
};

/// Everything but RFC 3986's unreserved characters is percent-encoded in the order number put
/// in place of `{0}`, so it stays one path segment whatever it holds.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// On whose behalf a call is made.
pub struct Call<'a> {
    pub entity: &'a str,
    /// The caller's token, forwarded unchanged (the platform's documented behaviour).
    pub token: &'a str,
    pub request_id: &'a str,
    pub config: &'a EntityConfig,
}

pub struct Passthrough {
    gateway: Arc<Gateway>,
}

impl Passthrough {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }

    /// Calls the company's endpoint `url` with `body`, on the caller's behalf.
    async fn relay(
        &self,
        call: &Call<'_>,
        interface: Interface,
        url: &Url,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> Result<Relayed, ScheduleError> {
        Ok(self
            .gateway
            .call(OutboundCall {
                entity: call.entity,
                interface,
                url,
                token: call.token,
                request_id: call.request_id,
                body,
                idempotency_key,
                timeout: entity_timeout(call.config),
            })
            .await?)
    }

    /// How long a call on behalf of an entity may take, at most.
    pub fn deadline(&self, config: &EntityConfig) -> Duration {
        self.gateway.deadline(entity_timeout(config))
    }

    /// Appointment Search at `target`, with the body as the client sent it.
    pub async fn open_slots(
        &self,
        call: &Call<'_>,
        target: &str,
        raw: &[u8],
    ) -> Result<Relayed, ScheduleError> {
        self.relay(call, Interface::OpenSlots, &parse(target)?, raw, None)
            .await
    }

    /// Book Job at `target` (its `{0}` the original order's number), with the body as the client
    /// sent it and what it left out filled from the original order, sent with `key` as its
    /// `Idempotency-Key`.
    pub async fn book(
        &self,
        call: &Call<'_>,
        target: &str,
        original: &WorkOrder,
        req: &BookJob,
        raw: &[u8],
        key: &str,
    ) -> Result<Outcome, ScheduleError> {
        let url = book_job_url(target, original.order_num().as_str())?;
        let body = whole_job(raw, req, original);
        Ok(Outcome::Relayed(
            self.relay(call, Interface::Followup, &url, &body, Some(key))
                .await?,
        ))
    }
}

/// The Book Job a third party receives: the client's object byte for byte (unknown properties
/// and spellings such as `"Qty:"` kept), with the properties it left out taken from the original
/// order, as the built-in scheduler takes them: `OriginalOrderNum`, `OrderType`, `UserName`
/// (the original's technician), `Account`, `Location` and `Assets`.
fn whole_job(raw: &[u8], req: &BookJob, original: &WorkOrder) -> Vec<u8> {
    let mut fill = serde_json::Map::new();
    let mut add = |k: &str, v: Option<Value>| {
        if let Some(v) = v.filter(|v| !v.is_null())
            && !req.given(k)
        {
            fill.insert(k.to_string(), v);
        }
    };
    add(
        "OriginalOrderNum",
        Some(Value::from(original.order_num().as_str())),
    );
    add("OrderType", original.order_type().map(Value::from));
    add("UserName", original.user_name().map(Value::from));
    for part in [Carried::Account, Carried::Location, Carried::Assets] {
        add(part.name(), original.carried(part));
    }
    if fill.is_empty() {
        return raw.to_vec();
    }
    // The client's object is `{ ... }`, checked when it was read: the additions go before its
    // closing brace.
    let end = raw.iter().rposition(|b| *b == b'}').unwrap_or(raw.len());
    let empty = raw[..end].iter().rposition(|b| !b.is_ascii_whitespace())
        == raw.iter().position(|b| *b == b'{');
    let mut out = raw[..end].to_vec();
    for (i, (k, v)) in fill.iter().enumerate() {
        if i > 0 || !empty {
            out.push(b',');
        }
        // Serialising a string and a JSON value cannot fail.
        out.extend(serde_json::to_vec(k).unwrap_or_default());
        out.push(b':');
        out.extend(serde_json::to_vec(v).unwrap_or_default());
    }
    out.extend_from_slice(&raw[end..]);
    out
}

/// The BookJob URI with `{0}` replaced by the original order number, percent-encoded. A number
/// that would not stay one path segment (`.` or `..`, which URLs resolve even percent-encoded)
/// is refused (work orders cannot have one; this holds whatever was stored before).
pub(crate) fn book_job_url(template: &str, original: &str) -> Result<Url, ScheduleError> {
    if original == "." || original == ".." {
        return Err(ScheduleError::Domain(DomainError::invalid(
            "$.OriginalOrderNum",
            "a work order number cannot be \".\" or \"..\"",
        )));
    }
    let encoded = utf8_percent_encode(original, SEGMENT).to_string();
    parse(&template.replace("{0}", &encoded))
}

fn parse(uri: &str) -> Result<Url, ScheduleError> {
    // The configuration was validated when it was stored; this only fails for a configuration
    // written by an older version.
    Url::parse(uri).map_err(|_| {
        ScheduleError::Domain(DomainError::conflict(
            "urn:revisit:error:bad-scheduler-uri",
            "the entity configuration's scheduler URI is not a valid absolute URI; an admin corrects it with POST /seiapi/v3/SysConfig/mobility",
        ))
    })
}

/// The entity's `RestApi.TimeoutMs` (validated 100..=120000 when stored).
fn entity_timeout(config: &EntityConfig) -> Option<Duration> {
    config
        .0
        .get("RestApi")
        .and_then(|r| r.get("TimeoutMs"))
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_number_replaces_the_placeholder_as_one_encoded_segment() {
        let u = book_job_url("https://crm.example.com/wo/{0}/followup", "WO 1/ä?x").unwrap();
        assert_eq!(
            u.as_str(),
            "https://crm.example.com/wo/WO%201%2F%C3%A4%3Fx/followup"
        );
        let u = book_job_url("https://crm.example.com/wo/{0}/followup", "WO-1.a_b~c").unwrap();
        assert_eq!(u.path(), "/wo/WO-1.a_b~c/followup");
        for dots in [".", ".."] {
            assert!(book_job_url("https://crm.example.com/wo/{0}/followup", dots).is_err());
        }
    }
}
