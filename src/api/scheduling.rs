//! The built-in scheduler's set-up (admin): `/scheduling/v1/{workcenters|technicians|ordertypes}`
//! with list, get, put and delete. Bodies are PascalCase JSON, checked against the scheduler's
//! model before they are stored. Work centers are readable by every role of the entity: a
//! client needs a work center's time zone to show its customers' local times.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use revisit_scheduler::{Invalid, OrderType, Technician, WorkCenter};
use serde_json::{Map, Value, json};

use super::extract::{JsonObject, PathOf};
use crate::{
    app::AppState,
    auth::Caller,
    domain::Role,
    error::{ApiError, InvalidParam},
    store::SchedKind,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/scheduling/v1/{kind}", get(list))
        .route(
            "/scheduling/v1/{kind}/{id}",
            get(get_one).put(put_one).delete(delete_one),
        )
}

/// Ids are 1 to 64 characters without control characters (PostgreSQL refuses NUL in text).
fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 64 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the id must be 1 to 64 characters without control characters",
        ));
    }
    Ok(())
}

fn kind_of(s: &str) -> Result<SchedKind, ApiError> {
    SchedKind::parse(s).ok_or_else(|| {
        ApiError::not_found(format!(
            "no scheduler resource {s:?}: workcenters, technicians or ordertypes"
        ))
    })
}

/// The property that names an object of each kind.
pub(crate) fn id_property(kind: SchedKind) -> &'static str {
    match kind {
        SchedKind::WorkCenters => "ServiceAreaID",
        SchedKind::Technicians => "UserName",
        SchedKind::OrderTypes => "OrderType",
    }
}

fn parse_typed<T: serde::de::DeserializeOwned + serde::Serialize>(
    body: Value,
    validate: impl Fn(&T) -> Result<(), Vec<Invalid>>,
) -> Result<Value, ApiError> {
    let t: T = serde_path_to_error::deserialize(body)?;
    validate(&t)?;
    serde_json::to_value(&t).map_err(ApiError::internal)
}

/// Checks a body against the model of its kind and returns it in stored (normalised) form.
/// The id comes from the path when the body has none, and must match it otherwise.
pub(crate) fn check_object(
    kind: SchedKind,
    id: &str,
    mut body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let key = id_property(kind);
    match body.get(key) {
        None | Some(Value::Null) => {
            body.insert(key.into(), json!(id));
        }
        Some(Value::String(s)) if s == id => {}
        Some(_) => {
            return Err(ApiError::invalid(
                format!("{key} must equal the id in the path ({id})"),
                vec![InvalidParam::new(
                    format!("$.{key}"),
                    "must equal the id in the path",
                )],
            ));
        }
    }
    let body = Value::Object(body);
    match kind {
        SchedKind::WorkCenters => parse_typed::<WorkCenter>(body, WorkCenter::validate),
        SchedKind::Technicians => parse_typed::<Technician>(body, Technician::validate),
        SchedKind::OrderTypes => parse_typed::<OrderType>(body, OrderType::validate),
    }
}

/// Work centers (name, place, time zone, window policy) are readable by every role: the apps
/// show a customer's times in the work center's zone. Technicians and order types are the
/// admin's.
fn require_read(caller: &Caller, kind: SchedKind) -> Result<(), ApiError> {
    match kind {
        SchedKind::WorkCenters => Ok(()),
        _ => Ok(caller.require(&[Role::Admin], "read the scheduler set-up")?),
    }
}

/// Lists the objects of a kind. Work centers: every role; technicians and order types: admin.
#[utoipa::path(get, path = "/scheduling/v1/{Kind}", tag = "scheduler set-up",
    params(("Kind" = String, Path, description = "workcenters, technicians or ordertypes")),
    responses((status = 200, description = "Items", body = super::schemas::SchedItems), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    PathOf(kind): PathOf<String>,
) -> Result<Json<Value>, ApiError> {
    let kind = kind_of(&kind)?;
    require_read(&caller, kind)?;
    let items = state.store.list_sched(&caller.entity, kind).await?;
    Ok(Json(json!({ "Items": items })))
}

/// One object of a kind. Work centers: every role; technicians and order types: admin.
#[utoipa::path(get, path = "/scheduling/v1/{Kind}/{Id}", tag = "scheduler set-up",
    params(("Kind" = String, Path), ("Id" = String, Path)),
    responses((status = 200, body = super::schemas::SchedObject), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn get_one(
    caller: Caller,
    State(state): State<AppState>,
    PathOf((kind, id)): PathOf<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let k = kind_of(&kind)?;
    require_read(&caller, k)?;
    check_id(&id)?;
    state
        .store
        .get_sched(&caller.entity, k, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no {kind} {id:?}")))
}

#[utoipa::path(put, path = "/scheduling/v1/{Kind}/{Id}", tag = "scheduler set-up",
    params(("Kind" = String, Path), ("Id" = String, Path)), request_body = super::schemas::SchedObject,
    responses((status = 200, body = super::schemas::SchedObject), (status = 201, body = super::schemas::SchedObject), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn put_one(
    caller: Caller,
    State(state): State<AppState>,
    PathOf((kind, id)): PathOf<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin], "change the scheduler set-up")?;
    let k = kind_of(&kind)?;
    check_id(&id)?;
    let stored = check_object(k, &id, body)?;
    let created = state
        .store
        .put_sched(&caller.entity, k, &id, &stored)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)).into_response())
}

#[utoipa::path(delete, path = "/scheduling/v1/{Kind}/{Id}", tag = "scheduler set-up",
    params(("Kind" = String, Path), ("Id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn delete_one(
    caller: Caller,
    State(state): State<AppState>,
    PathOf((kind, id)): PathOf<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin], "change the scheduler set-up")?;
    let k = kind_of(&kind)?;
    check_id(&id)?;
    if state.store.delete_sched(&caller.entity, k, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no {kind} {id:?}")))
    }
}
