//! The notifications' admin API ([Revisit]; docs/api.md, "Notifications"): the events of the
//! caller's entity with their delivery state and attempts, replay, and the signing secret.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::{
    api::extract::{PathText, limit_param, unknown_param},
    app::AppState,
    auth::Caller,
    domain::{InvalidParam, Role, time},
    error::ApiError,
    store::{AttemptRecord, EventFilter, EventRecord, SigningSecrets},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/notifications/v1/events", get(list))
        .route("/notifications/v1/events/{id}", get(one))
        .route("/notifications/v1/events/{id}/replay", post(replay))
        .route("/notifications/v1/secret", get(secret))
        .route("/notifications/v1/secret/rotate", post(rotate))
}

fn event_json(e: &EventRecord) -> Value {
    json!({
        "EventID": e.id,
        "EventType": e.event,
        "OrderNum": e.order_num,
        "State": e.state,
        "CreatedAt": time::format_millis(e.created_at),
        "Attempts": e.attempts,
        "NextAttemptAt": (e.state == "pending").then(|| time::format_millis(e.next_attempt_at)).flatten(),
        "DeliveredAt": e.delivered_at.and_then(time::format_millis),
        "LastStatus": e.last_status,
        "LastError": e.last_error,
    })
}

fn attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "Attempt": a.n,
        "At": time::format_millis(a.at),
        "DurationMs": a.duration_ms,
        "Status": a.status,
        "Error": a.error,
    })
}

/// The entity's events, newest first: `State` (pending, delivered, failed), `OrderNum`,
/// `Before` (the `Next` cursor of the previous page), `Limit` (1-1000, default 100).
#[utoipa::path(get, path = "/notifications/v1/events", operation_id = "list_notification_events", tag = "notifications",
    params(("State" = Option<String>, Query), ("OrderNum" = Option<String>, Query),
           ("Before" = Option<i64>, Query), ("Limit" = Option<i64>, Query)),
    responses((status = 200, description = "Events", body = Object), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "read the notifications")?;
    let mut f = EventFilter {
        limit: 100,
        ..Default::default()
    };
    let mut errs = Vec::new();
    for (k, v) in &q {
        match k.as_str() {
            "State" => match v.as_str() {
                "pending" | "delivered" | "failed" => f.state = Some(v.clone()),
                _ => errs.push(InvalidParam::new(
                    "State",
                    "expected pending, delivered or failed",
                )),
            },
            "OrderNum" => f.order_num = Some(v.clone()),
            "Before" => match v.parse::<i64>() {
                Ok(n) => f.before = Some(n),
                Err(_) => errs.push(InvalidParam::new("Before", "expected a cursor (Next)")),
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
    let rows = state.store.list_events(&caller.entity, &f).await?;
    let next = (rows.len() as i64 == f.limit)
        .then(|| rows.last().map(|(seq, _)| *seq))
        .flatten();
    Ok(Json(json!({
        "Events": rows.iter().map(|(_, e)| event_json(e)).collect::<Vec<_>>(),
        "Next": next,
    })))
}

/// One event: its state, the body as sent, and every attempt.
#[utoipa::path(get, path = "/notifications/v1/events/{EventID}", operation_id = "get_notification_event", tag = "notifications",
    params(("EventID" = String, Path)),
    responses((status = 200, description = "The event", body = Object), (status = 404, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn one(
    caller: Caller,
    State(state): State<AppState>,
    PathText(id): PathText,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "read the notifications")?;
    let Some((ev, attempts)) = state.store.get_event(&caller.entity, &id).await? else {
        return Err(ApiError::not_found(format!("no notification event {id:?}")));
    };
    let mut body = event_json(&ev);
    body["Payload"] = serde_json::from_str(&ev.payload).unwrap_or(Value::Null);
    body["AttemptLog"] = attempts.iter().map(attempt_json).collect();
    Ok(Json(body))
}

/// Sends an event again (admin), whatever its state: pending now, with a new retry window,
/// the same `webhook-id`.
#[utoipa::path(post, path = "/notifications/v1/events/{EventID}/replay", operation_id = "replay_notification_event", tag = "notifications",
    params(("EventID" = String, Path)),
    responses((status = 202, description = "The event, pending", body = Object), (status = 404, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn replay(
    caller: Caller,
    State(state): State<AppState>,
    PathText(id): PathText,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    caller.require(&[Role::Admin], "replay notifications")?;
    let Some(ev) = state.store.replay_event(&caller.entity, &id).await? else {
        return Err(ApiError::not_found(format!("no notification event {id:?}")));
    };
    Ok((axum::http::StatusCode::ACCEPTED, Json(event_json(&ev))))
}

fn secret_json(s: &SigningSecrets) -> Value {
    json!({
        "Secret": s.secret,
        "PreviousSecret": s.previous_secret,
        "RotatedAt": time::format_millis(s.rotated_at),
    })
}

/// The entity's signing secret (admin), made on first use.
#[utoipa::path(get, path = "/notifications/v1/secret", operation_id = "get_signing_secret", tag = "notifications",
    responses((status = 200, description = "The secret", body = Object),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn secret(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "read the signing secret")?;
    Ok(Json(secret_json(
        &state.store.signing_secrets(&caller.entity).await?,
    )))
}

/// A new signing secret (admin); the previous one signs too during the grace period.
#[utoipa::path(post, path = "/notifications/v1/secret/rotate", operation_id = "rotate_signing_secret", tag = "notifications",
    responses((status = 200, description = "The new secret", body = Object),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn rotate(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "rotate the signing secret")?;
    Ok(Json(secret_json(
        &state.store.rotate_signing_secret(&caller.entity).await?,
    )))
}
