//! `POST /scheduling/v1/reoptimize` (re-optimise a work center's coming days, or report what it
//! would do) and `GET /scheduling/v1/moves` (the moves made), for admins and dispatchers.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Query, State},
    routing::{get, post},
};
use serde_json::{Map, Value, json};

use super::extract::{JsonObject, limit_param, unknown_param};
use crate::{
    app::AppState,
    auth::Caller,
    domain::{DomainError, InvalidParam, Role, time::Time},
    error::ApiError,
    reoptimize::Request,
    store::{MoveFilter, PlannedMove},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/scheduling/v1/reoptimize", post(reoptimize))
        .route("/scheduling/v1/moves", get(moves))
}

/// The most iterations a request may ask for, and the longest it may search.
const MAX_ITERATIONS: u64 = 200_000;
const TIME_LIMIT: Duration = Duration::from_secs(20);

fn at(t: Time) -> Value {
    json!(t.to_string())
}

fn move_json(m: &PlannedMove) -> Value {
    json!({
        "OrderNum": m.order_num,
        "FromUserName": m.from_tech,
        "ToUserName": m.to_tech,
        "From": {"Start": at(m.from.0), "End": at(m.from.1)},
        "To": {"Start": at(m.to.0), "End": at(m.to.1)},
    })
}

/// Re-optimises a work center's coming days ([Revisit]): moves unstarted visits between
/// technicians and positions to cut travel, keeping every promised day and window, skill, shift,
/// pin and the freeze horizon. `DryRun` reports the moves without writing them.
#[utoipa::path(post, path = "/scheduling/v1/reoptimize", tag = "scheduler set-up", request_body = super::schemas::ReoptimizeRequest,
    responses((status = 200, description = "The moves, the travel saved, the dates written", body = Object),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "a run for that work center is under way", body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn reoptimize(
    caller: Caller,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "re-optimise")?;
    let req = parse(&body)?;
    let report = state.reoptimizer.run(&caller.entity, &req).await?;
    if report.busy {
        return Err(ApiError::reoptimization_running(&req.service_area_id));
    }
    let dates = |d: &[jiff::civil::Date]| d.iter().map(|d| d.to_string()).collect::<Vec<_>>();
    Ok(Json(json!({
        "RunID": report.run_id,
        "DryRun": report.dry_run,
        "ServiceAreaID": req.service_area_id,
        "TravelBeforeMinutes": report.travel_before_minutes,
        "TravelAfterMinutes": report.travel_after_minutes,
        "TravelSavedMinutes": report.travel_before_minutes - report.travel_after_minutes,
        "Moves": report.moves.iter().map(move_json).collect::<Vec<_>>(),
        "Committed": dates(&report.committed),
        "Conflicts": dates(&report.conflicted),
        "Untouched": report.untouched.iter().map(|(tech, date, why)| json!({
            "UserName": tech, "Date": date.to_string(), "Reason": why})).collect::<Vec<_>>(),
    })))
}

fn parse(body: &Map<String, Value>) -> Result<Request, DomainError> {
    let mut errs = Vec::new();
    let service_area_id = match body.get("ServiceAreaID") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            errs.push(InvalidParam::new(
                "$.ServiceAreaID",
                "required: the work center",
            ));
            String::new()
        }
    };
    let from = match body.get("From") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.parse::<jiff::civil::Date>() {
            Ok(d) => Some(d),
            Err(_) => {
                errs.push(InvalidParam::new(
                    "$.From",
                    "expected a date such as 2026-12-01",
                ));
                None
            }
        },
        Some(_) => {
            errs.push(InvalidParam::new(
                "$.From",
                "expected a date such as 2026-12-01",
            ));
            None
        }
    };
    let mut number = |k: &str, default: u64, max: u64| match body.get(k) {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=max).contains(&n) => n,
            _ => {
                errs.push(InvalidParam::new(
                    format!("$.{k}"),
                    format!("expected a whole number from 1 to {max}"),
                ));
                default
            }
        },
    };
    let days = number("Days", 7, 28) as u32;
    let seed = number("Seed", 1, u64::MAX);
    let iterations = number("Iterations", 20_000, MAX_ITERATIONS);
    let dry_run = match body.get("DryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errs.push(InvalidParam::new("$.DryRun", "expected a boolean"));
            false
        }
    };
    if !errs.is_empty() {
        return Err(DomainError::Invalid(errs));
    }
    Ok(Request {
        service_area_id,
        from,
        days,
        dry_run,
        seed,
        iterations,
        time_limit: TIME_LIMIT,
        reason: "reoptimize",
    })
}

/// The moves the re-optimiser made ([Revisit]), newest first: `OrderNum`, `From`/`To` (when
/// moved, RFC 3339), `Limit` (1-1000, default 100).
#[utoipa::path(get, path = "/scheduling/v1/moves", tag = "scheduler set-up",
    params(("OrderNum" = Option<String>, Query), ("From" = Option<String>, Query), ("To" = Option<String>, Query), ("Limit" = Option<i64>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, description = "Moves", body = Object), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn moves(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "read the moves")?;
    let mut f = MoveFilter {
        limit: 100,
        ..Default::default()
    };
    let mut errs = Vec::new();
    for (k, v) in &q {
        match k.as_str() {
            "OrderNum" => f.order_num = Some(v.clone()),
            "From" | "To" => match crate::domain::time::parse(v) {
                Ok(t) if k == "From" => f.from_ms = Some(t.as_millis()),
                Ok(t) => f.to_ms = Some(t.as_millis()),
                Err(e) => errs.push(InvalidParam::new(k.clone(), e.to_string())),
            },
            "Limit" => {
                if let Some(n) = limit_param(v, 1000, &mut errs) {
                    f.limit = n;
                }
            }
            other => errs.push(unknown_param(other)),
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid_query("invalid query parameters", errs));
    }
    let ms = |ms: i64| Time::from_millis(ms).map(at).unwrap_or(Value::Null);
    let items: Vec<Value> = state
        .store
        .list_moves(&caller.entity, &f)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "ID": m.id, "RunID": m.run_id, "Reason": m.reason, "OrderNum": m.order_num,
                "MovedAt": ms(m.moved_at), "FromUserName": m.from_tech, "ToUserName": m.to_tech,
                "From": {"Start": ms(m.from_start), "End": ms(m.from_end)},
                "To": {"Start": ms(m.to_start), "End": ms(m.to_end)},
                "TravelSavedMinutes": m.travel_saved_minutes,
            })
        })
        .collect();
    Ok(Json(json!({ "Moves": items })))
}
