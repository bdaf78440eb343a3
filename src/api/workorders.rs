//! Work orders (docs/api.md §5): `GET | PUT | POST | PATCH | DELETE
//! /seiapi/v3/trans/WorkOrder/{WorkOrderNum}` and the list `GET /seiapi/v3/trans/WorkOrders`.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Map, Value, json};

use super::extract::{JsonObject, OrderNumPath, limit_param, unknown_param};
use crate::{
    app::AppState,
    auth::Caller,
    domain::{
        DomainError, Role, WorkOrderNum,
        category::Reasons,
        status::OrderStatus,
        time,
        workorder::{self, WorkOrder},
    },
    error::{ApiError, InvalidParam},
    store::{ListFilter, WriteFn},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/seiapi/v3/trans/WorkOrder/{num}",
            get(get_order)
                .put(put_order)
                .post(post_order)
                .patch(patch_order)
                .delete(delete_order),
        )
        .route("/seiapi/v3/trans/WorkOrders", get(list_orders))
}

/// Loads an order of the caller's entity (404 if it exists only elsewhere) that the caller may see.
pub(crate) async fn load_visible(
    state: &AppState,
    caller: &Caller,
    num: &WorkOrderNum,
) -> Result<WorkOrder, ApiError> {
    let order = state
        .store
        .get_work_order(&caller.entity, num)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no work order {num}")))?;
    caller.may_see(&order)?;
    Ok(order)
}

#[utoipa::path(get, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderNum}", tag = "work orders",
    params(("WorkOrderNum" = String, Path)),
    responses((status = 200, body = super::schemas::WorkOrder), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get_order(
    caller: Caller,
    State(state): State<AppState>,
    OrderNumPath(num): OrderNumPath,
) -> Result<Json<WorkOrder>, ApiError> {
    let order = state
        .store
        .get_work_order(&caller.entity, &num)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no work order {num}")))?;
    if caller.may_see(&order).is_err() {
        // [Revisit] A technician may read the follow-up of their own order, which the scheduler
        // may have given to a colleague: they booked it with the customer.
        let theirs = match order
            .indexed()
            .original_order_num
            .map(|n| WorkOrderNum::parse(&n))
        {
            Some(Ok(orig)) => state
                .store
                .get_work_order(&caller.entity, &orig)
                .await?
                .is_some_and(|o| caller.may_see(&o).is_ok()),
            _ => false,
        };
        if !theirs {
            caller.may_see(&order)?;
        }
    }
    // Serialized straight into the answer: the typed order is its wire object.
    Ok(Json(order))
}

/// How a write turns the stored order and the body into the new order.
enum Mode {
    Replace,
    Update,
    Patch,
}

async fn write(
    caller: Caller,
    state: AppState,
    num: WorkOrderNum,
    body: Map<String, Value>,
    mode: Mode,
) -> Result<Response, ApiError> {
    let reasons: Reasons = caller.reasons();
    let who = caller.clone();
    let path_num = num.clone();
    let f: WriteFn = Box::new(move |prev: Option<WorkOrder>| {
        let next_map = match (&mode, &prev) {
            (Mode::Replace, _) => body,
            (_, None) => {
                return Err(DomainError::NotFound(format!(
                    "no work order {path_num}; create it with PUT"
                )));
            }
            (Mode::Update, Some(p)) => workorder::apply_update(p, body),
            (Mode::Patch, Some(p)) => workorder::apply_patch(p, body)?,
        };
        let next = WorkOrder::parse(&path_num, next_map)?;
        if who.is_technician() {
            match &prev {
                None => {
                    return Err(DomainError::Forbidden(
                        "technicians cannot create work orders".into(),
                    ));
                }
                Some(p) => who.may_see(p)?,
            }
            if next.user_name() != Some(who.user.as_str()) {
                return Err(DomainError::Forbidden(
                    "technicians cannot reassign work orders".into(),
                ));
            }
            // The follow-up rule is the office's decision, not the technician's.
            let rule = |o: Option<&WorkOrder>| o.and_then(WorkOrder::followup_rule_as_given);
            if rule(Some(&next)) != rule(prev.as_ref()) {
                return Err(DomainError::Forbidden(
                    "technicians cannot change the CanScheduleFollowup rule".into(),
                ));
            }
            // So is pinning a visit (the re-optimiser leaves it where it is).
            if prev.as_ref().is_some_and(|p| p.pinned() != next.pinned()) {
                return Err(DomainError::Forbidden(
                    "technicians cannot pin or unpin a visit".into(),
                ));
            }
        }
        next.check_transition(prev.as_ref(), &reasons)?;
        Ok(next)
    });
    let written = state
        .store
        .write_work_order(&caller.entity, &num, f)
        .await?;
    let location = format!("/seiapi/v3/trans/WorkOrder/{}", urlencode(num.as_str()));
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = (status, Json(written.order)).into_response();
    if status == StatusCode::CREATED
        && let Ok(v) = location.parse()
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Inserts or replaces the whole order: 201 with `Location` when created, 200 when replaced.
#[utoipa::path(put, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderNum}", tag = "work orders",
    params(("WorkOrderNum" = String, Path)), request_body = super::schemas::WorkOrder,
    responses((status = 200, body = super::schemas::WorkOrder), (status = 201, body = super::schemas::WorkOrder, headers(("Location" = String))), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn put_order(
    caller: Caller,
    State(state): State<AppState>,
    OrderNumPath(num): OrderNumPath,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    write(caller, state, num, body, Mode::Replace).await
}

/// Updates an existing order: each given top-level property replaces the stored one.
#[utoipa::path(post, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderNum}", tag = "work orders",
    params(("WorkOrderNum" = String, Path)), request_body = super::schemas::WorkOrder,
    responses((status = 200, body = super::schemas::WorkOrder), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn post_order(
    caller: Caller,
    State(state): State<AppState>,
    OrderNumPath(num): OrderNumPath,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    write(caller, state, num, body, Mode::Update).await
}

/// Updates only the supplied properties; `_fields` removes properties, `"Delete": true` removes
/// collection items.
#[utoipa::path(patch, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderNum}", tag = "work orders",
    params(("WorkOrderNum" = String, Path)), request_body = super::schemas::WorkOrder,
    responses((status = 200, body = super::schemas::WorkOrder), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn patch_order(
    caller: Caller,
    State(state): State<AppState>,
    OrderNumPath(num): OrderNumPath,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    write(caller, state, num, body, Mode::Patch).await
}

/// Deletes an order (admin, dispatcher): 204.
#[utoipa::path(delete, path = "/seiapi/v3/trans/WorkOrder/{WorkOrderNum}", tag = "work orders",
    params(("WorkOrderNum" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn delete_order(
    caller: Caller,
    State(state): State<AppState>,
    OrderNumPath(num): OrderNumPath,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "delete work orders")?;
    if state.store.delete_work_order(&caller.entity, &num).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no work order {num}")))
    }
}

/// `2026-12-01` (exactly `YYYY-MM-DD`, years 0001 to 9999): 00:00:00.000 UTC of that day.
fn date_start(v: &str) -> Option<time::Time> {
    if v.len() != 10 || v.as_bytes()[4] != b'-' || v.as_bytes()[7] != b'-' {
        return None;
    }
    let date: jiff::civil::Date = v.parse().ok()?;
    if date.year() < 1 {
        return None;
    }
    let ts = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    time::Time::from_millis(ts.as_millisecond())
}

pub(crate) const DEFAULT_LIMIT: i64 = 100;
pub(crate) const MAX_LIMIT: i64 = 1000;

/// Lists the entity's orders ([Revisit]), ordered by planned start; `From`/`To` bound the
/// planned start; `OrderStatus` takes one code or a comma-separated list. A technician sees only
/// their own orders.
#[utoipa::path(get, path = "/seiapi/v3/trans/WorkOrders", tag = "work orders",
    params(("UserName" = Option<String>, Query), ("OrderStatus" = Option<String>, Query), ("ServiceAreaID" = Option<String>, Query),
           ("From" = Option<String>, Query, description = "planned start at or after: RFC 3339, 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z, or a date (YYYY-MM-DD) for 00:00 UTC of that day"),
           ("To" = Option<String>, Query, description = "planned start before: RFC 3339, 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z, or a date (YYYY-MM-DD) for 00:00 UTC of that day"), ("Limit" = Option<i64>, Query, minimum = 1, maximum = 1000), ("Offset" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, body = super::schemas::WorkOrderList), (status = 400, body = crate::error::ErrorBody), (status = 403, description = "a technician naming another UserName", body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn list_orders(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut errs = Vec::new();
    let mut f = ListFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (k, v) in &q {
        match k.as_str() {
            "UserName" | "ServiceAreaID" if v.chars().any(char::is_control) => errs.push(
                InvalidParam::new(k.clone(), "control characters are not allowed"),
            ),
            "UserName" => f.user_name = Some(v.clone()),
            "ServiceAreaID" => f.service_area_id = Some(v.clone()),
            "OrderStatus" => {
                for part in v.split(',') {
                    match part
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .and_then(OrderStatus::from_code)
                    {
                        Some(s) => f.statuses.push(s.code()),
                        None => errs.push(InvalidParam::new(
                            "OrderStatus",
                            format!("unknown status code {part:?}"),
                        )),
                    }
                }
            }
            // The same times as in bodies (`domain::time`): RFC 3339, years 0001 to 9999; or a
            // date alone, for the start of that day in UTC ([Revisit]).
            "From" | "To" => match date_start(v).map_or_else(|| time::parse(v), Ok) {
                Ok(t) if k == "From" => f.from_ms = Some(t.as_millis()),
                Ok(t) => f.to_ms = Some(t.as_millis()),
                Err(e) => {
                    let mut p = InvalidParam::new(k.clone(), e.to_string());
                    p.value = v.chars().take(100).collect();
                    errs.push(p);
                }
            },
            "Limit" => {
                if let Some(n) = limit_param(v, MAX_LIMIT, &mut errs) {
                    f.limit = n;
                }
            }
            "Offset" => match v.parse::<i64>() {
                Ok(n) if n >= 0 => f.offset = n,
                _ => errs.push(InvalidParam::new("Offset", "expected a number >= 0")),
            },
            other => errs.push(unknown_param(other)),
        }
    }
    if !errs.is_empty() {
        let detail = errs
            .iter()
            .map(|p| format!("{}: {}", p.path, p.reason))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::invalid_query(detail, errs));
    }
    if caller.is_technician() {
        match &f.user_name {
            Some(u) if u != caller.user.as_str() => {
                return Err(ApiError::forbidden(
                    "a technician can list only their own work orders",
                ));
            }
            _ => f.user_name = Some(caller.user.to_string()),
        }
    }
    let page = state.store.list_work_orders(&caller.entity, &f).await?;
    Ok(Json(json!({
        "WorkOrders": page.items,
        "Total": page.total,
        "Limit": f.limit,
        "Offset": f.offset,
    })))
}
