//! Pass-through to a company's own scheduler (seiapi.md §8): the validated request goes to the
//! configured endpoint through the one outbound client, and the third party's status and JSON
//! body come back unchanged. A booking it confirms (200 with an `OrderNum`) completes the pending
//! follow-up record, so the history of §7.1 and the replay of retries work as with the built-in
//! scheduler.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::http::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use url::Url;

use super::{Call, Reply, ScheduleError, Scheduler};
use crate::{
    domain::{
        bookjob::{BookJob, Period},
        sysconfig::EntityConfig,
        workorder::WorkOrder,
    },
    gateway::{Gateway, Interface, OutboundCall, endpoint_host},
    store::{FollowupDone, Store},
};

/// Everything but RFC 3986's unreserved characters is percent-encoded in the order number put
/// in place of `{0}`, so it stays one path segment whatever it holds.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub struct Passthrough {
    gateway: Arc<Gateway>,
    store: Arc<dyn Store>,
}

impl Passthrough {
    /// Calls the company's endpoint `url` with the request as received, on the caller's behalf.
    async fn relay(
        &self,
        call: &Call<'_>,
        interface: Interface,
        url: &Url,
        req: &BookJob,
    ) -> Result<crate::gateway::Relayed, crate::gateway::GatewayError> {
        self.gateway
            .call(OutboundCall {
                entity: call.caller.entity.as_str(),
                interface,
                url,
                token: &call.caller.token,
                request_id: call.request_id,
                body: &req.raw,
                timeout: entity_timeout(call.config),
            })
            .await
    }

    pub fn new(gateway: Arc<Gateway>, store: Arc<dyn Store>) -> Self {
        Self { gateway, store }
    }
}

/// The BookJob URI with `{0}` replaced by the original order number, percent-encoded.
pub fn book_job_url(template: &str, original: &str) -> Result<Url, ScheduleError> {
    let encoded = utf8_percent_encode(original, SEGMENT).to_string();
    parse(&template.replace("{0}", &encoded))
}

fn parse(uri: &str) -> Result<Url, ScheduleError> {
    // The configuration was validated when it was stored; this only fails for a configuration
    // written by an older version.
    Url::parse(uri).map_err(|_| {
        ScheduleError::Domain(crate::domain::DomainError::conflict(
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

#[async_trait]
impl Scheduler for Passthrough {
    async fn open_slots(
        &self,
        call: &Call<'_>,
        target: &str,
        _original: Option<&WorkOrder>,
        req: &BookJob,
    ) -> Result<Reply, ScheduleError> {
        let url = parse(target)?;
        let relayed = self.relay(call, Interface::OpenSlots, &url, req).await?;
        Ok(Reply {
            status: relayed.status,
            body: relayed.body,
        })
    }

    async fn book(
        &self,
        call: &Call<'_>,
        target: &str,
        original: &WorkOrder,
        req: &BookJob,
        _slot: Period,
        claim_id: &str,
    ) -> Result<Reply, ScheduleError> {
        let url = book_job_url(target, original.order_num().as_str())?;
        let relayed = self.relay(call, Interface::Followup, &url, req).await?;
        if relayed.status == StatusCode::OK {
            let done = FollowupDone {
                order_num: relayed
                    .body
                    .get("OrderNum")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                status_code: 200,
                answer: relayed.body.clone(),
            };
            // The third party has booked: failing the request now would invite a retry that
            // books twice. The answer goes back; the unrecorded booking goes to the log (its
            // claim stays pending, so retries get 409 until the claim goes stale).
            if let Err(e) = self
                .store
                .finish_followup(&call.caller.entity, claim_id, &done)
                .await
            {
                tracing::error!(error = %e, host = %endpoint_host(&url), order_num = ?done.order_num,
                    "a pass-through booking succeeded but could not be recorded");
            }
        }
        Ok(Reply {
            status: relayed.status,
            body: relayed.body,
        })
    }
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
    }
}
