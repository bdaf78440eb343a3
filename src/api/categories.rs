//! `GET | PUT /seiapi/v3/trans/SystemCategory/Default/{Code}`: system categories (§5.2, §5.4).

use axum::{Json, Router, extract::State, routing::get};
use serde_json::Value;

use super::extract::{JsonObject, PathText};
use crate::{
    app::AppState,
    auth::Caller,
    domain::{
        Role,
        category::{self, Category, Reasons},
        sysconfig::EntityConfig,
    },
    error::ApiError,
};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/seiapi/v3/trans/SystemCategory/Default/{code}",
        get(get_category).put(put_category),
    )
}

/// The caller's entity's version of a category (read with the caller's token check), else the
/// default; `None` for an unknown code.
fn category_of(caller: &Caller, code: &str) -> Option<Category> {
    if !category::is_known(code) {
        return None;
    }
    caller
        .settings
        .categories
        .iter()
        .find(|c| c.code == code)
        .cloned()
        .or_else(|| category::default_category(code))
}

/// The caller's entity's configuration and its two lists of Closed-Incomplete reasons, as
/// read with the caller's token check.
pub fn settings_of(caller: &Caller) -> Result<(EntityConfig, Reasons), ApiError> {
    let get = |code: &str| {
        category_of(caller, code).ok_or_else(|| ApiError::internal("reason category missing"))
    };
    Ok((
        EntityConfig(caller.settings.config.clone()),
        Reasons {
            followup: get(category::FOLLOWUP_REASONS)?,
            no_followup: get(category::NO_FOLLOWUP_REASONS)?,
        },
    ))
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
    category_of(&caller, &code)
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
    let other = category_of(&caller, sibling)
        .ok_or_else(|| ApiError::internal("reason category missing"))?;
    let cat = category::parse_replacement(&code, &Value::Object(body), &other)?;
    state.store.ensure_entity(&caller.entity).await?;
    state.store.put_category(&caller.entity, &cat).await?;
    Ok(Json(cat))
}
