//! The follow-up endpoints (seiapi.md §6, §7): validate, check the preconditions, then hand the
//! request to the scheduler the entity's configuration names.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use tracing::Instrument;

use super::{
    categories::settings_of,
    extract::{JsonObject, OrderNumPath, RequestId},
    workorders::load_visible,
};
use crate::{
    app::AppState,
    auth::Caller,
    domain::{
        WorkOrderNum,
        bookjob::BookJob,
        category::Reasons,
        sysconfig::{EntityConfig, SchedulerTarget},
        time,
        workorder::{WorkOrder, check_followup_allowed},
    },
    error::ApiError,
    schedule::{Call, Reply},
    store::{ClaimOutcome, FollowupRecord, NewClaim},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/seiapi/v3/trans/Appointments/OpenSlots", post(open_slots))
        .route(
            "/seiapi/v3/trans/WorkOrder/{num}/Followup",
            post(book_followup).get(list_followups),
        )
}

/// Which scheduler serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The one the entity's configuration names (the seiapi endpoints).
    Configured,
    /// Always the built-in scheduler (the §8 interfaces served over HTTP, `/scheduling/v1/...`).
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

fn reply(r: Reply) -> Response {
    (r.status, Json(r.body)).into_response()
}

/// Loads the original order and checks that the caller may follow it up (§5.3, §5.4, §7).
async fn followable(
    state: &AppState,
    caller: &Caller,
    num: &WorkOrderNum,
    cfg: &EntityConfig,
    reasons: &Reasons,
) -> Result<WorkOrder, ApiError> {
    let order = load_visible(state, caller, num).await?;
    check_followup_allowed(&order, cfg, reasons)?;
    Ok(order)
}

/// Open appointment slots for an Appointment Search object. With `OriginalOrderNum`, the order
/// must be one the caller may follow up; technicians must name one.
#[utoipa::path(post, path = "/seiapi/v3/trans/Appointments/OpenSlots", tag = "follow-up", request_body = Object,
    responses((status = 200, description = "StatusMsg and TimeConstraints (type 1001 windows)", body = Object),
              (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 502, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn open_slots(
    caller: Caller,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    open_slots_via(caller, state, rid, body, Via::Configured).await
}

/// Appointment search with every check of §6, answered by the scheduler `via` names.
pub async fn open_slots_via(
    caller: Caller,
    state: AppState,
    rid: String,
    body: serde_json::Map<String, serde_json::Value>,
    via: Via,
) -> Result<Response, ApiError> {
    let req = BookJob::parse(body)?;
    let (config, reasons) = settings_of(&caller)?;
    let original = match &req.original_order_num {
        Some(n) => {
            let num = WorkOrderNum::parse(n).map_err(|e| {
                ApiError::invalid(
                    e.clone(),
                    vec![crate::error::InvalidParam::new("$.OriginalOrderNum", e)],
                )
            })?;
            Some(followable(&state, &caller, &num, &config, &reasons).await?)
        }
        None if caller.is_technician() => {
            return Err(ApiError::invalid(
                "a technician searches slots for a follow-up of one of their orders: give OriginalOrderNum",
                vec![crate::error::InvalidParam::new(
                    "$.OriginalOrderNum",
                    "required for technicians",
                )],
            ));
        }
        None => None,
    };
    let (scheduler, target) = state
        .schedulers
        .resolve(via.target(config.search_appts()), "RestApi.SearchAppts")?;
    let call = Call {
        caller: &caller,
        request_id: &rid,
        config: &config,
    };
    Ok(reply(
        scheduler
            .open_slots(&call, &target, original.as_ref(), &req)
            .await?,
    ))
}

/// Books the follow-up of `{WorkOrderID}` in the chosen slot.
#[utoipa::path(post, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup", tag = "follow-up",
    params(("WorkOrderID" = String, Path, description = "the original order")), request_body = Object,
    responses((status = 200, description = "OrderNum and OrderedParts", body = Object),
              (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody), (status = 502, body = crate::error::ErrorBody),
              (status = 503, description = "the database is unreachable, or too many bookings of that day are waiting; nothing was booked, retry after Retry-After", body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn book_followup(
    caller: Caller,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    OrderNumPath(num): OrderNumPath,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    book_followup_via(caller, state, rid, num, headers, body, Via::Configured).await
}

/// Book Job with every check and the retry rules of §7, booked by the scheduler `via` names.
pub async fn book_followup_via(
    caller: Caller,
    state: AppState,
    rid: String,
    num: WorkOrderNum,
    headers: HeaderMap,
    body: serde_json::Map<String, serde_json::Value>,
    via: Via,
) -> Result<Response, ApiError> {
    let idem_key = idempotency_key(&headers)?;
    let mut req = BookJob::parse(body)?;
    let slot = req.check_booking(&num)?;
    let (config, reasons) = settings_of(&caller)?;
    let original = followable(&state, &caller, &num, &config, &reasons).await?;
    let target_conf = via.target(config.book_job());
    let (scheduler, target) = state
        .schedulers
        .resolve(target_conf.clone(), "RestApi.BookJob")?;
    let claim = NewClaim {
        id: uuid::Uuid::new_v4().to_string(),
        original: num.clone(),
        idem_key,
        request_hash: request_hash(&req),
        user_name: caller.user.to_string(),
        scheduler: match target_conf {
            SchedulerTarget::Builtin => "builtin".into(),
            _ => "passthrough".into(),
        },
        endpoint_host: url::Url::parse(&target)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string)),
        slot_start_ms: slot.start.as_millisecond(),
        slot_end_ms: slot.end.as_millisecond(),
    };
    // From the claim on, the booking runs to its end even if the client goes away (hyper drops
    // the handler then): a dropped request must not leave a claim blocking retries, or a third
    // party's booking unrecorded.
    let task = tokio::spawn(
        claim_and_book(
            state, caller, rid, config, original, req, slot, claim, scheduler, target,
        )
        .instrument(tracing::Span::current()),
    );
    task.await.map_err(ApiError::internal)?
}

#[allow(clippy::too_many_arguments)]
async fn claim_and_book(
    state: AppState,
    caller: Caller,
    rid: String,
    config: EntityConfig,
    original: crate::domain::workorder::WorkOrder,
    req: BookJob,
    slot: crate::domain::bookjob::Period,
    claim: NewClaim,
    scheduler: std::sync::Arc<dyn crate::schedule::Scheduler>,
    target: String,
) -> Result<Response, ApiError> {
    let call = Call {
        caller: &caller,
        request_id: &rid,
        config: &config,
    };
    // A window the scheduler already knows to be gone is refused without recording anything,
    // unless the claim would have answered otherwise (a replay, a request in flight, ...).
    if let Err(e) = scheduler.precheck(&call, &original, &req, slot).await {
        return match state.store.peek_followup(&caller.entity, &claim).await? {
            Some(outcome) => claim_answer(outcome, &claim.original),
            None => Err(e.into()),
        };
    }
    match state.store.claim_followup(&caller.entity, &claim).await? {
        ClaimOutcome::New => {}
        outcome => return claim_answer(outcome, &claim.original),
    }
    match scheduler
        .book(&call, &target, &original, &req, slot, &claim.id)
        .await
    {
        Ok(r) if r.status == StatusCode::OK => Ok(reply(r)),
        Ok(r) => {
            // A third party's refusal (401, 500, ...) is relayed as it came, and is no booking:
            // the claim must not block a retry.
            abandon(&state, &caller, &claim.id).await;
            Ok(reply(r))
        }
        Err(e) => {
            // The claim must not block a retry of a booking that did not happen. (A refused
            // built-in booking already dropped it in its own transaction.)
            if !matches!(e, crate::schedule::ScheduleError::SlotUnavailable { .. }) {
                abandon(&state, &caller, &claim.id).await;
            }
            Err(e.into())
        }
    }
}

/// The answer to a booking request that the follow-up ledger answers itself (seiapi.md §7.1).
fn claim_answer(outcome: ClaimOutcome, num: &WorkOrderNum) -> Result<Response, ApiError> {
    match outcome {
        ClaimOutcome::New => Err(ApiError::internal("a new claim has no answer of its own")),
        ClaimOutcome::Replay(r) => Ok(replay(&r)),
        ClaimOutcome::InFlight => Err(ApiError::conflict(
            "urn:revisit:error:request-in-flight",
            format!(
                "a booking of a follow-up for work order {num} is still being processed; retry in a few seconds"
            ),
        )),
        ClaimOutcome::KeyReused => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:revisit:error:idempotency-key-reused",
            "Idempotency key reused",
            "this Idempotency-Key was used with a different request body; use a new key for a new request",
        )),
        ClaimOutcome::AlreadyBooked(r) => Err(ApiError::conflict(
            "urn:revisit:error:followup-already-booked",
            format!(
                "work order {num} already has the follow-up {} booked; read it with GET /seiapi/v3/trans/WorkOrder/{num}/Followup",
                r.order_num.as_deref().unwrap_or("(unknown)")
            ),
        )),
    }
}

async fn abandon(state: &AppState, caller: &Caller, claim_id: &str) {
    if let Err(err) = state.store.abandon_followup(&caller.entity, claim_id).await {
        tracing::warn!(error = %err, "could not drop an abandoned follow-up claim");
    }
}

/// The `Idempotency-Key` header, if any: 1 to 255 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let ok = v.as_bytes();
    if ok.is_empty() || ok.len() > 255 || !ok.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(Some(String::from_utf8_lossy(ok).into_owned()))
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

fn replay(r: &FollowupRecord) -> Response {
    let status = r
        .status_code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    let mut resp = (status, Json(r.answer.clone().unwrap_or_default())).into_response();
    resp.headers_mut().insert(
        "idempotent-replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    resp
}

/// The follow-ups booked from an order ([Revisit] §7.1): who, when, slot, scheduler, answer.
#[utoipa::path(get, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup", tag = "follow-up",
    params(("WorkOrderID" = String, Path, description = "the original order")),
    responses((status = 200, description = "Followups", body = Object), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn list_followups(
    caller: Caller,
    State(state): State<AppState>,
    OrderNumPath(num): OrderNumPath,
) -> Result<Json<serde_json::Value>, ApiError> {
    load_visible(&state, &caller, &num).await?;
    let records = state.store.list_followups(&caller.entity, &num).await?;
    let ts = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(time::format)
            .unwrap_or_default()
    };
    let items: Vec<_> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "OrderNum": r.order_num,
                "OriginalOrderNum": r.original_order_num,
                "UserName": r.user_name,
                "BookedAt": ts(r.created_at_ms),
                "Scheduler": r.scheduler,
                "EndpointHost": r.endpoint_host,
                "Slot": {"Start": ts(r.slot_start_ms), "End": ts(r.slot_end_ms)},
                "StatusCode": r.status_code,
                "Answer": r.answer,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "Followups": items })))
}
