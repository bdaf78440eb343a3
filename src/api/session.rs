//! `POST /createjwt`: log in.

use axum::{Json, Router, extract::State, routing::post};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::extract::JsonObject;
use crate::{app::AppState, auth::password, error::ApiError};

pub fn routes() -> Router<AppState> {
    Router::new().route("/createjwt", post(create_jwt))
}

#[derive(Serialize, ToSchema)]
pub struct TokenAnswer {
    token: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"username": "tech01", "password": "tech01"}))]
pub(crate) struct Credentials {
    #[schema(min_length = 1, max_length = 1024)]
    username: String,
    #[schema(min_length = 1, max_length = 1024)]
    password: String,
}

/// Exchanges a user name and password for a token. A wrong user and a wrong password give the
/// same 401, in the same time.
#[utoipa::path(post, path = "/createjwt", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenAnswer), (status = 401, body = crate::error::ErrorBody)))]
pub async fn create_jwt(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Json<TokenAnswer>, ApiError> {
    let field = |k: &str| match body.get(k) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 1024 => Ok(s.clone()),
        _ => Err(ApiError::invalid(
            format!("{k} is required (a non-empty string)"),
            vec![crate::error::InvalidParam::new(
                format!("$.{k}"),
                "expected a non-empty string",
            )],
        )),
    };
    let username = field("username")?;
    let secret = field("password")?;
    let user = state.store.find_user(&username).await?;
    let stored = user
        .as_ref()
        .filter(|u| u.active)
        .map(|u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || password::verify(&secret, stored.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => return Err(ApiError::unauthorized("wrong user name or password")),
    };
    let token = state
        .keys
        .issue(&user.name, &user.entity, user.role)
        .map_err(ApiError::internal)?;
    Ok(Json(TokenAnswer { token }))
}
