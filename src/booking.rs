//! A follow-up booking, owned here from the request to the answer (README, "Follow-up
//! bookings"): parse the Book Job, check the original order, book through the scheduler the
//! entity's configuration names, and keep the follow-up ledger (the record of every booking,
//! which answers retries). Slot search, which makes the same checks, is here too.
//!
//! The ledger and the two schedulers:
//! - the built-in scheduler records its booking in the booking's own transaction (the ledger's
//!   judgement included), so a built-in booking never leaves a claim behind, whatever happens;
//! - a pass-through booking calls a third party, which must not happen inside a transaction: a
//!   pending claim is recorded first (so that a retry meanwhile waits instead of calling twice),
//!   then finished with the third party's confirmation, or dropped.

use std::sync::Arc;

use axum::{body::Bytes, http::HeaderValue};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::{
    auth::Caller,
    domain::{
        DomainError, InvalidParam, WorkOrderNum,
        bookjob::BookJob,
        followup::{ClaimOutcome, FollowupDone, NewClaim},
        sysconfig::SchedulerTarget,
        workorder::{WorkOrder, check_followup_allowed},
    },
    gateway::{Relayed, endpoint_host},
    schedule::{
        Outcome, ScheduleError,
        builtin::Builtin,
        passthrough::{Call, Passthrough},
    },
    store::{BookingEvents, Refusal, Store, StoreError},
};

/// How long after its call's deadline a pending pass-through claim is still taken to be in
/// flight (its process may be finishing it).
const LEASE_MARGIN_MS: i64 = 5_000;

/// Which scheduler serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The one the entity's configuration names (the seiapi endpoints).
    Configured,
    /// Always the built-in scheduler (its two interfaces served over HTTP, `/scheduling/v1/`).
    Builtin,
}

impl Via {
    fn target(self, configured: SchedulerTarget) -> SchedulerTarget {
        match self {
            Via::Configured => configured,
            Via::Builtin => SchedulerTarget::Builtin,
        }
    }
}

/// What a request is answered with: a status and a JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The body as a third party sent it, with its content type, to relay byte for byte.
    pub raw: Option<(Bytes, Option<HeaderValue>)>,
    /// The ledger gave a recorded answer again (`idempotent-replayed: true`).
    pub replayed: bool,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            raw: None,
            replayed: false,
        }
    }

    fn relayed(r: Relayed) -> Self {
        Self {
            status: r.status.as_u16(),
            body: r.body,
            raw: Some((r.raw, r.content_type)),
            replayed: false,
        }
    }
}

/// Why a search or booking was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum FollowupError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The chosen window can no longer be booked; up to three alternatives.
    #[error("slot unavailable: {detail}")]
    SlotUnavailable {
        detail: String,
        alternatives: Vec<Value>,
    },
    /// Too much is waiting to be booked right now; nothing was done.
    #[error("busy: {0}")]
    Busy(String),
    /// The ledger's own answer (`InFlight`, `Unknown`, `KeyReused` or `AlreadyBooked`).
    #[error("the follow-up of {original} is already being or has been booked")]
    Ledger {
        outcome: Box<ClaimOutcome>,
        original: WorkOrderNum,
    },
    /// The entity's configuration names no scheduler for this interface.
    #[error("no scheduler configured in {0}")]
    NoScheduler(&'static str),
    /// The booking task failed to complete (it panicked).
    #[error("the booking task failed: {0}")]
    Task(String),
}

/// The follow-up service: the store and the two schedulers.
pub struct Followups {
    store: Arc<Store>,
    builtin: Builtin,
    passthrough: Passthrough,
}

impl Followups {
    pub fn new(store: Arc<Store>, builtin: Builtin, passthrough: Passthrough) -> Self {
        Self {
            store,
            builtin,
            passthrough,
        }
    }

    /// The built-in scheduler (the benchmarks time its search directly).
    pub fn builtin(&self) -> &Builtin {
        &self.builtin
    }

    /// Open appointment slots for an Appointment Search object. With `OriginalOrderNum` the
    /// order must be one the caller may follow up; technicians must name one.
    pub async fn search(
        &self,
        caller: &Caller,
        request_id: &str,
        body: Map<String, Value>,
        raw: Bytes,
        via: Via,
    ) -> Result<Answer, FollowupError> {
        let req = BookJob::parse(body)?;
        let original = match &req.original_order_num {
            Some(n) => {
                let num = WorkOrderNum::parse(n).map_err(|e| DomainError::InvalidRequest {
                    detail: e.clone(),
                    params: vec![InvalidParam::new("$.OriginalOrderNum", e)],
                })?;
                Some(self.followable(caller, &num).await?)
            }
            None if caller.is_technician() => {
                return Err(DomainError::InvalidRequest {
                    detail: "a technician searches slots for a follow-up of one of their orders: give OriginalOrderNum".into(),
                    params: vec![InvalidParam::new("$.OriginalOrderNum", "required for technicians")],
                }
                .into());
            }
            None => None,
        };
        let config = caller.config();
        match via.target(config.search_appts()) {
            SchedulerTarget::Builtin => {
                let (answer, fully_booked) = self
                    .builtin
                    .open_slots(&caller.entity, original.as_ref(), &req)
                    .await?;
                if fully_booked {
                    refused(
                        &self.store,
                        &self.builtin,
                        caller,
                        original.as_ref(),
                        &req,
                        Refusal::Search,
                    )
                    .await;
                }
                Ok(Answer::ok(answer))
            }
            SchedulerTarget::Http(uri) => {
                let call = call_of(caller, request_id, &config);
                Ok(Answer::relayed(
                    self.passthrough.open_slots(&call, &uri, &raw).await?,
                ))
            }
            SchedulerTarget::None => Err(FollowupError::NoScheduler("RestApi.SearchAppts")),
        }
    }

    /// Books the follow-up of `num` in the chosen slot, with the retry rules of the ledger.
    /// Once it is under way it runs to its end even if the client goes away (its task is
    /// detached), so that a third party's booking is never left unrecorded.
    #[allow(clippy::too_many_arguments)]
    pub async fn book(
        self: &Arc<Self>,
        caller: Caller,
        request_id: String,
        num: WorkOrderNum,
        idem_key: Option<String>,
        body: Map<String, Value>,
        raw: Bytes,
        via: Via,
    ) -> Result<Answer, FollowupError> {
        let this = self.clone();
        let task = tokio::spawn(
            async move {
                this.book_now(&caller, &request_id, num, idem_key, body, &raw, via)
                    .await
            }
            .instrument(tracing::Span::current()),
        );
        task.await.map_err(|e| FollowupError::Task(e.to_string()))?
    }

    #[allow(clippy::too_many_arguments)]
    async fn book_now(
        &self,
        caller: &Caller,
        request_id: &str,
        num: WorkOrderNum,
        idem_key: Option<String>,
        body: Map<String, Value>,
        raw: &[u8],
        via: Via,
    ) -> Result<Answer, FollowupError> {
        let mut req = BookJob::parse(body)?;
        let slot = req.check_booking(&num)?;
        let original = self.followable(caller, &num).await?;
        let config = caller.config();
        let target = via.target(config.book_job());
        let id = uuid::Uuid::new_v4().to_string();
        let mut claim = NewClaim {
            outbound_key: None,
            lease_until_ms: None,
            id,
            original: num.clone(),
            request_hash: request_hash(&req),
            user_name: caller.user.to_string(),
            scheduler: match target {
                SchedulerTarget::Builtin => "builtin",
                _ => "passthrough",
            },
            endpoint_host: match &target {
                SchedulerTarget::Http(uri) => url::Url::parse(uri).ok().map(|u| endpoint_host(&u)),
                _ => None,
            },
            slot_start_ms: slot.start.as_millis(),
            slot_end_ms: slot.end.as_millis(),
            idem_key,
        };
        let uri = match target {
            SchedulerTarget::None => return Err(FollowupError::NoScheduler("RestApi.BookJob")),
            SchedulerTarget::Builtin => {
                let outcome = self
                    .builtin
                    .book(
                        &caller.entity,
                        &original,
                        &req,
                        slot,
                        &claim,
                        BookingEvents::of(&caller.settings.config),
                    )
                    .await?;
                let answer = self.answer(caller, &claim, outcome).await;
                if let Err(FollowupError::SlotUnavailable { .. }) = &answer {
                    refused(
                        &self.store,
                        &self.builtin,
                        caller,
                        Some(&original),
                        &req,
                        Refusal::Booking,
                    )
                    .await;
                }
                return answer;
            }
            SchedulerTarget::Http(uri) => uri,
        };
        // Pass-through: the claim is recorded before the call, with the key the third party
        // gets (the client's, else the claim's id) and a lease for as long as the call may last.
        let deadline = self.passthrough.deadline(&config);
        claim.outbound_key = Some(claim.idem_key.clone().unwrap_or_else(|| claim.id.clone()));
        claim.lease_until_ms = Some(
            jiff::Timestamp::now().as_millisecond()
                + i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX / 2)
                + LEASE_MARGIN_MS,
        );
        let (claim_id, key) = match self.store.claim_followup(&caller.entity, &claim).await? {
            ClaimOutcome::New => (
                claim.id.clone(),
                claim.outbound_key.clone().unwrap_or_default(),
            ),
            // The same request was sent before with no known outcome: again, with its key.
            ClaimOutcome::Resume(r) => (r.id.clone(), r.outbound_key().to_string()),
            outcome => return ledger(outcome, &claim),
        };
        let call = call_of(caller, request_id, &config);
        let outcome = self
            .passthrough
            .book(&call, &uri, &original, &req, raw, &key)
            .await;
        let settled = match &outcome {
            Ok(Outcome::Relayed(r)) if r.status.as_u16() == 200 => {
                let done = FollowupDone {
                    order_num: r
                        .body
                        .get("OrderNum")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    status_code: 200,
                    answer: r.body.clone(),
                    answer_raw: std::str::from_utf8(&r.raw).ok().map(str::to_string),
                };
                // The third party has booked: failing the request now would invite a retry. The
                // answer goes back; the unrecorded booking goes to the log (its claim stays
                // pending, and a retry sends it again with the same key).
                self.store
                    .finish_followup(&caller.entity, &claim_id, &done)
                    .await
            }
            // A refusal (401, 409, ...) is no booking, and a call that never left booked
            // nothing: the claim must not block a retry.
            Ok(Outcome::Relayed(r)) if r.status.is_client_error() => {
                self.store.abandon_followup(&caller.entity, &claim_id).await
            }
            Err(ScheduleError::Gateway(e)) if !e.may_have_reached() => {
                self.store.abandon_followup(&caller.entity, &claim_id).await
            }
            // A 5xx, a timeout, an answer that broke off or made no sense: the third party may
            // have booked. The claim stays, its outcome unknown: a retry of this request sends
            // it again with the same key.
            _ => self.store.unknown_followup(&caller.entity, &claim_id).await,
        };
        if let Err(e) = settled {
            tracing::error!(error = %e, claim = %claim_id, "could not record a pass-through booking's outcome");
        }
        self.answer(caller, &claim, outcome?).await
    }

    /// The answer to a booking's outcome. A refused window is answered by the ledger first
    /// when it can (the same request was booked before: its answer again).
    async fn answer(
        &self,
        caller: &Caller,
        claim: &NewClaim,
        outcome: Outcome,
    ) -> Result<Answer, FollowupError> {
        match outcome {
            Outcome::Booked(done) => Ok(Answer::ok(done.answer)),
            Outcome::Relayed(r) => Ok(Answer::relayed(r)),
            Outcome::Answered(a) => ledger(*a, claim),
            Outcome::Busy { detail } => Err(FollowupError::Busy(detail)),
            Outcome::Unavailable {
                detail,
                alternatives,
            } => match self.store.peek_followup(&caller.entity, claim).await? {
                Some(a) => ledger(a, claim),
                None => Err(FollowupError::SlotUnavailable {
                    detail,
                    alternatives,
                }),
            },
        }
    }

    /// Loads the original order and checks that the caller may follow it up.
    async fn followable(
        &self,
        caller: &Caller,
        num: &WorkOrderNum,
    ) -> Result<WorkOrder, FollowupError> {
        let order = self
            .store
            .get_work_order(&caller.entity, num)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("no work order {num}")))?;
        caller.may_see(&order)?;
        check_followup_allowed(&order, &caller.config(), &caller.reasons())?;
        Ok(order)
    }
}

fn call_of<'a>(
    caller: &'a Caller,
    request_id: &'a str,
    config: &'a crate::domain::sysconfig::EntityConfig,
) -> Call<'a> {
    Call {
        entity: caller.entity.as_str(),
        token: &caller.token,
        request_id,
        config,
    }
}

/// The ledger's own answer to a request.
fn ledger(outcome: ClaimOutcome, claim: &NewClaim) -> Result<Answer, FollowupError> {
    match outcome {
        ClaimOutcome::Replay(r) => Ok(Answer {
            status: r.status_code.unwrap_or(200),
            body: r.answer.unwrap_or_default(),
            raw: r.answer_raw.map(|a| {
                (
                    Bytes::from(a),
                    Some(HeaderValue::from_static("application/json")),
                )
            }),
            replayed: true,
        }),
        outcome => Err(FollowupError::Ledger {
            outcome: Box::new(outcome),
            original: claim.original.clone(),
        }),
    }
}

/// SHA-256 of the request body in canonical form (times canonical; keys sorted, because
/// serde_json's map is ordered by key).
fn request_hash(req: &BookJob) -> String {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::to_vec(&req.raw).unwrap_or_default();
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Counts a request the built-in scheduler refused as fully booked, for the dispatcher's board:
/// in the job's work center, on the local date it was made. Called once the answer is decided,
/// outside the booking's transaction, in a statement of its own; a failure is logged and never
/// changes the answer.
async fn refused(
    store: &Store,
    builtin: &Builtin,
    caller: &Caller,
    original: Option<&WorkOrder>,
    req: &BookJob,
    kind: Refusal,
) {
    let counted = match builtin
        .work_center_today(&caller.entity, original, req)
        .await
    {
        Ok(Some((area, day))) => store
            .count_refusal(&caller.entity, &area, &day.to_string(), kind)
            .await
            .map_err(|e| e.to_string()),
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = counted {
        tracing::warn!(error = %e, "could not count a request refused as fully booked");
    }
}
