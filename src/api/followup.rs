//! The follow-up endpoints (seiapi.md §6, §7): validate, check the preconditions, then hand the
//! request to the scheduler the entity's configuration names.

use axum::{
    Json, Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::post,
};

use super::{
    extract::{JsonObject, OrderNumPath, RequestId},
    workorders::load_visible,
};
use crate::{
    app::AppState,
    auth::Caller,
    domain::{
        WorkOrderNum,
        bookjob::BookJob,
        sysconfig::EntityConfig,
        workorder::{WorkOrder, check_followup_allowed},
    },
    error::ApiError,
    schedule::{Call, Reply},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/seiapi/v3/trans/Appointments/OpenSlots", post(open_slots))
        .route(
            "/seiapi/v3/trans/WorkOrder/{num}/Followup",
            post(book_followup),
        )
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
) -> Result<WorkOrder, ApiError> {
    let order = load_visible(state, caller, num).await?;
    let reasons = super::categories::load_reasons(state.store.as_ref(), &caller.entity).await?;
    check_followup_allowed(&order, cfg, &reasons)?;
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
    let req = BookJob::parse(body)?;
    let config = EntityConfig(state.store.get_config(&caller.entity).await?);
    let original = match &req.original_order_num {
        Some(n) => {
            let num = WorkOrderNum::parse(n).map_err(|e| {
                ApiError::invalid(
                    e.clone(),
                    vec![crate::error::InvalidParam::new("$.OriginalOrderNum", e)],
                )
            })?;
            Some(followable(&state, &caller, &num, &config).await?)
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
        .resolve(config.search_appts(), "RestApi.SearchAppts")?;
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
              (status = 422, body = crate::error::ErrorBody), (status = 502, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn book_followup(
    caller: Caller,
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    OrderNumPath(num): OrderNumPath,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut req = BookJob::parse(body)?;
    let slot = req.check_booking(&num)?;
    let config = EntityConfig(state.store.get_config(&caller.entity).await?);
    let original = followable(&state, &caller, &num, &config).await?;
    let (scheduler, target) = state
        .schedulers
        .resolve(config.book_job(), "RestApi.BookJob")?;
    let call = Call {
        caller: &caller,
        request_id: &rid,
        config: &config,
    };
    Ok(reply(
        scheduler
            .book(&call, &target, &original, &req, slot)
            .await?,
    ))
}
