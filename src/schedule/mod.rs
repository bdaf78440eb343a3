//! The one interface behind the follow-up endpoints (seiapi.md §6-§8). The entity's
//! configuration names the implementation: `builtin:` for Revisit's own scheduler, an http(s)
//! URI for the pass-through client of a company's own scheduler.

pub mod builtin;
pub mod cache;
pub mod passthrough;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use serde_json::Value;

use crate::{
    auth::Caller,
    domain::{
        DomainError,
        bookjob::{BookJob, Period},
        sysconfig::{EntityConfig, SchedulerTarget},
        workorder::WorkOrder,
    },
    error::ApiError,
    store::StoreError,
};

/// What a scheduler answered: the status and JSON body to return to the caller (a pass-through
/// relays a third party's status unchanged).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
        }
    }
}

/// Everything a scheduler may need about the call besides the body.
pub struct Call<'a> {
    pub caller: &'a Caller,
    pub request_id: &'a str,
    pub config: &'a EntityConfig,
}

/// The scheduler layer's error type.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chosen window can no longer be booked; up to three alternatives.
    #[error("slot unavailable: {detail}")]
    SlotUnavailable {
        detail: String,
        alternatives: Vec<Value>,
    },
    /// Too much is waiting to be booked right now; the request was not carried out.
    #[error("busy: {0}")]
    Busy(String),
    /// A third-party scheduler could not be called or misbehaved (seiapi.md §8).
    #[error(transparent)]
    Gateway(#[from] crate::gateway::GatewayError),
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Domain(d) => d.into(),
            ScheduleError::Store(s) => s.into(),
            ScheduleError::Busy(detail) => {
                let mut e = ApiError::unavailable(detail);
                // The queue was already more than ten seconds long: do not come back at once.
                e.retry_after = Some(5);
                e
            }
            ScheduleError::SlotUnavailable {
                detail,
                alternatives,
            } => {
                let mut err = ApiError::conflict("urn:revisit:error:slot-unavailable", detail);
                let mut extra = serde_json::Map::new();
                extra.insert("Alternatives".into(), Value::Array(alternatives));
                err.extra = Some(extra);
                err
            }
            ScheduleError::Gateway(g) => g.into(),
        }
    }
}

#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Appointment search (§6): the request has been type-checked and, when it names an
    /// original order, that order's preconditions hold.
    async fn open_slots(
        &self,
        call: &Call<'_>,
        target: &str,
        original: Option<&WorkOrder>,
        req: &BookJob,
    ) -> Result<Reply, ScheduleError>;
    /// Whether `slot` can still be booked, as far as this scheduler can tell cheaply and
    /// without writing anything: `Err(SlotUnavailable)` lets the caller refuse before it
    /// records a claim. A pass-through scheduler cannot tell, and says yes.
    async fn precheck(
        &self,
        _call: &Call<'_>,
        _original: &WorkOrder,
        _req: &BookJob,
        _slot: Period,
    ) -> Result<(), ScheduleError> {
        Ok(())
    }
    /// Book Job (§7): every precondition of §7 holds, `precheck` passed moments ago, and `slot`
    /// is the chosen window. The booking
    /// completes the pending follow-up record `claim_id` (seiapi.md §7.1).
    async fn book(
        &self,
        call: &Call<'_>,
        target: &str,
        original: &WorkOrder,
        req: &BookJob,
        slot: Period,
        claim_id: &str,
    ) -> Result<Reply, ScheduleError>;
}

/// The implementations, one of each, shared by all entities.
#[derive(Clone)]
pub struct Schedulers {
    pub builtin: Arc<dyn Scheduler>,
    pub passthrough: Arc<dyn Scheduler>,
}

impl Schedulers {
    /// The implementation a configured target names, with the URI it is to call.
    pub fn resolve(
        &self,
        target: SchedulerTarget,
        property: &str,
    ) -> Result<(Arc<dyn Scheduler>, String), ApiError> {
        match target {
            SchedulerTarget::Builtin => Ok((
                self.builtin.clone(),
                crate::domain::sysconfig::BUILTIN.to_string(),
            )),
            SchedulerTarget::Http(uri) => Ok((self.passthrough.clone(), uri)),
            SchedulerTarget::None => Err(ApiError::conflict(
                "urn:revisit:error:no-scheduler",
                format!(
                    "the entity configuration has no {property}; an admin sets it (builtin: or an https URI) with POST /seiapi/v3/SysConfig/mobility"
                ),
            )),
        }
    }
}
