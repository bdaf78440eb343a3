//! The follow-up endpoints: `POST /seiapi/v3/trans/Appointments/OpenSlots` and
//! `POST | GET /seiapi/v3/trans/WorkOrder/{id}/Followup`. The flow itself is `crate::booking`'s.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};

use super::{
    extract::{JsonBody, OrderNumPath, RequestId},
    workorders::load_visible,
};
use crate::{
    app::AppState,
    auth::Caller,
    booking::{Answer, Via},
    domain::{WorkOrderNum, time},
    error::ApiError,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/seiapi/v3/trans/Appointments/OpenSlots", post(open_slots))
        .route(
            "/seiapi/v3/trans/WorkOrder/{num}/Followup",
            post(book_followup).get(list_followups),
        )
}

/// The response for an answer of the follow-up flow: a third party's answer byte for byte, with
/// its content type.
pub(crate) fn respond(a: Answer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = match a.raw {
        Some((bytes, content_type)) => {
            let ct = content_type.unwrap_or_else(|| HeaderValue::from_static("application/json"));
            (status, [(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
        None => (status, Json(a.body)).into_response(),
    };
    if a.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// Open appointment slots for an Appointment Search object. With `OriginalOrderNum`, the order
/// must be one the caller may follow up; technicians must name one.
#[utoipa::path(post, path = "/seiapi/v3/trans/Appointments/OpenSlots", tag = "follow-up", request_body = super::schemas::AppointmentSearch,
    responses((status = 200, description = "StatusMsg and TimeConstraints (type 1001 windows)", body = super::schemas::OpenSlotsAnswer),
              (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 502, body = crate::error::ErrorBody), (status = 503, description = "the database is unavailable, or the third party's circuit is open (Retry-After)", body = crate::error::ErrorBody), (status = 504, description = "the third party did not answer in time", body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn open_slots(
    caller: Caller,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    body: JsonBody,
) -> Result<Response, ApiError> {
    Ok(respond(
        state
            .followups
            .search(&caller, &rid, body.map, body.raw, Via::Configured)
            .await?,
    ))
}

/// Books the follow-up of `{WorkOrderID}` in the chosen slot.
#[utoipa::path(post, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup", tag = "follow-up",
    params(("WorkOrderID" = String, Path, description = "the original order"), ("Idempotency-Key" = Option<String>, Header, pattern = "^[\\x21-\\x7e]([\\x20-\\x7e]{0,253}[\\x21-\\x7e])?$", description = "Replays the first answer for 24 hours (header `idempotent-replayed: true`); another body with the same key is a 422")), request_body = super::schemas::BookJob,
    responses((status = 200, description = "OrderNum and OrderedParts", headers(("idempotent-replayed" = String, description = "true on a replay")), body = super::schemas::BookAnswer),
              (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody), (status = 502, description = "the third-party scheduler failed", body = crate::error::ErrorBody), (status = 504, description = "the third-party scheduler did not answer in time; the booking's outcome is unknown: retry with the same key", body = crate::error::ErrorBody),
              (status = 503, description = "the database is unreachable, or too many bookings of that day are waiting; nothing was booked, retry after Retry-After", body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn book_followup(
    caller: Caller,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    OrderNumPath(num): OrderNumPath,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    book_via(caller, state, rid, num, &headers, body, Via::Configured).await
}

/// Book Job through the scheduler `via` names, with the `Idempotency-Key` of the request.
pub(crate) async fn book_via(
    caller: Caller,
    state: AppState,
    rid: String,
    num: WorkOrderNum,
    headers: &HeaderMap,
    body: JsonBody,
    via: Via,
) -> Result<Response, ApiError> {
    let key = idempotency_key(headers)?;
    let answer = state
        .followups
        .book(caller, rid, num, key, body.map, body.raw, via)
        .await?;
    Ok(respond(answer))
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

/// The follow-ups booked from an order ([Revisit]): who, when, slot, scheduler, answer.
#[utoipa::path(get, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup", tag = "follow-up",
    params(("WorkOrderID" = String, Path, description = "the original order")),
    responses((status = 200, description = "Followups", body = super::schemas::FollowupList), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn list_followups(
    caller: Caller,
    State(state): State<AppState>,
    OrderNumPath(num): OrderNumPath,
) -> Result<Json<serde_json::Value>, ApiError> {
    load_visible(&state, &caller, &num).await?;
    let records = state.store.list_followups(&caller.entity, &num).await?;
    let ts = |ms: i64| {
        time::Time::from_millis(ms)
            .map(|t| t.to_string())
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
