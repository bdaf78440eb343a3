//! `GET | PUT /seiapi/v3/trans/SystemCategory/Default/{Code}`: system categories (§5.2, §5.4).

use axum::{Json, Router, extract::State, routing::get};
use serde_json::Value;

use super::extract::{JsonObject, PathText};
use crate::{
    app::AppState,
    auth::Caller,
    domain::{
        Role,
        category::{self, Category},
    },
    error::ApiError,
};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/seiapi/v3/trans/SystemCategory/Default/{code}",
        get(get_category).put(put_category),
    )
}

fn unknown(code: &str) -> ApiError {
    ApiError::not_found(format!(
        "no system category {code:?}: Revisit knows 10 (statuses), 15 and 16 (Closed Incomplete reasons)"
    ))
}

#[utoipa::path(get, path = "/seiapi/v3/trans/SystemCategory/Default/{Code}", tag = "categories",
    params(("Code" = String, Path, description = "10, 15 or 16")),
    responses((status = 200, body = Category), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn get_category(
    caller: Caller,
    PathText(code): PathText,
) -> Result<Json<Category>, ApiError> {
    caller
        .category(&code)
        .map(Json)
        .ok_or_else(|| unknown(&code))
}

/// Replaces an entity's reason list (admin). Category 10 is fixed.
#[utoipa::path(put, path = "/seiapi/v3/trans/SystemCategory/Default/{Code}", tag = "categories",
    params(("Code" = String, Path, description = "15 or 16")), request_body = Category,
    responses((status = 200, body = Category), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn put_category(
    caller: Caller,
    State(state): State<AppState>,
    PathText(code): PathText,
    JsonObject(body): JsonObject,
) -> Result<Json<Category>, ApiError> {
    caller.require(&[Role::Admin], "change system categories")?;
    if !category::is_known(&code) {
        return Err(unknown(&code));
    }
    if !category::is_editable(&code) {
        return Err(ApiError::conflict(
            "urn:revisit:error:category-fixed",
            format!("system category {code} is fixed and cannot be replaced"),
        ));
    }
    let sibling = if code == category::FOLLOWUP_REASONS {
        category::NO_FOLLOWUP_REASONS
    } else {
        category::FOLLOWUP_REASONS
    };
    let other = caller
        .category(sibling)
        .ok_or_else(|| ApiError::internal("reason category missing"))?;
    let cat = category::parse_replacement(&code, &Value::Object(body), &other)?;
    state.store.ensure_entity(&caller.entity).await?;
    state.store.put_category(&caller.entity, &cat).await?;
    Ok(Json(cat))
}
