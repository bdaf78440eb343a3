//! The two interfaces of a third-party scheduler (docs/api.md §8), served by the built-in
//! scheduler over HTTP, so that a platform, or another Revisit, can use this one as its
//! third-party scheduler:
//!
//! - `POST /scheduling/v1/openslots`: Appointment Search;
//! - `POST /scheduling/v1/workorders/{0}/followup`: Book Job for the original order `{0}`.
//!
//! Same authentication (`x-access-token`, the token the calling platform forwards), the same
//! checks and the same answers as the seiapi endpoints, but always answered by the built-in
//! scheduler, whatever the entity's `RestApi` says (which also means a loop back into
//! pass-through is impossible). The token decides the entity, as everywhere.

use axum::{Router, extract::State, http::HeaderMap, response::Response, routing::post};

use super::{
    extract::{JsonBody, OrderNumPath, RequestId},
    followup::{book_via, respond},
};
use crate::{app::AppState, auth::Caller, booking::Via, error::ApiError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/scheduling/v1/openslots", post(open_slots))
        .route("/scheduling/v1/workorders/{num}/followup", post(book))
}

/// Appointment Search interface , answered by the built-in scheduler.
#[utoipa::path(post, operation_id = "scheduler_open_slots", path = "/scheduling/v1/openslots", tag = "scheduler interfaces", request_body = super::schemas::AppointmentSearch,
    responses((status = 200, description = "StatusMsg and TimeConstraints (type 1001 windows)", body = super::schemas::OpenSlotsAnswer),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
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
            .search(&caller, &rid, body.map, body.raw, Via::Builtin)
            .await?,
    ))
}

/// Book Job interface  for the original order `{0}`, booked by the built-in scheduler.
#[utoipa::path(post, operation_id = "scheduler_book_followup", path = "/scheduling/v1/workorders/{WorkOrderID}/followup", tag = "scheduler interfaces",
    params(("WorkOrderID" = String, Path, description = "the original order"), ("Idempotency-Key" = Option<String>, Header, description = "as for the seiapi Followup")), request_body = super::schemas::BookJob,
    responses((status = 200, description = "OrderNum and OrderedParts", body = super::schemas::BookAnswer),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn book(
    caller: Caller,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    OrderNumPath(num): OrderNumPath,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    book_via(caller, state, rid, num, &headers, body, Via::Builtin).await
}
