//! Extractors that answer with the error object instead of axum's plain-text rejections.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, rejection::BytesRejection},
    http::{StatusCode, header, request::Parts},
};
use serde_json::{Map, Value};

use crate::{
    app::{AppState, REQUEST_ID},
    auth::{Caller, Settings, TOKEN_HEADER},
    domain::{EntityId, Role, UserName, WorkOrderNum},
    error::ApiError,
};

/// A request body that must be a JSON object, sent as `application/json`. Unknown properties
/// are kept; types are checked by the domain.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        JsonBody::from_request(req, state)
            .await
            .map(|b| JsonObject(b.map))
    }
}

/// [`JsonObject`] with the body's bytes as they came, for what is passed on to a third party as
/// the client sent it.
pub struct JsonBody {
    pub map: Map<String, Value>,
    pub raw: Bytes,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::unsupported_media_type());
        }
        // The whole body within the body read timeout: a client that promises bytes and sends
        // them slowly, or never, holds nothing longer.
        let read = Bytes::from_request(req, state);
        let bytes = tokio::time::timeout(state.config.body_read_timeout, read)
            .await
            .map_err(|_| ApiError::request_timeout())?
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::body_too_large()
                } else {
                    ApiError::bad_request(format!("the request body could not be read: {e}"))
                }
            })?;
        // serde_json refuses nesting deeper than 128 levels, so a hostile body cannot exhaust
        // the stack.
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::malformed_json(format!("the body is not valid JSON: {e}")))?;
        // PostgreSQL cannot store U+0000 in text or jsonb (SQLite can): refuse it on both, with
        // a 400, instead of failing in the database. Only `\u0000` escapes can produce one.
        if bytes.windows(6).any(|w| w == b"\\u0000")
            && let Some(path) = nul_path(&value, "$".to_string())
        {
            return Err(ApiError::invalid(
                format!("{path}: the character U+0000 is not allowed"),
                vec![crate::error::InvalidParam::new(
                    path,
                    "the character U+0000 is not allowed",
                )],
            ));
        }
        match value {
            Value::Object(map) => Ok(JsonBody { map, raw: bytes }),
            _ => Err(ApiError::invalid(
                "the body must be a JSON object",
                vec![crate::error::InvalidParam::new("$", "expected an object")],
            )),
        }
    }
}

/// The JSON path of the first string or property name holding U+0000.
fn nul_path(v: &Value, path: String) -> Option<String> {
    match v {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_path(x, format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                Some(path.clone())
            } else {
                nul_path(x, format!("{path}.{k}"))
            }
        }),
        _ => None,
    }
}

/// One text segment of the path, answering a bad one (invalid UTF-8) with the error object
/// instead of axum's plain-text rejection.
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(s)| PathText(s))
            .map_err(|e| ApiError::bad_request(format!("bad path: {e}")))
    }
}

/// Path parameters of any shape, refused with the error object instead of plain text.
pub struct PathOf<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for PathOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| PathOf(t))
            .map_err(|e| ApiError::bad_request(format!("bad path: {e}")))
    }
}

/// A work order number taken from the path.
pub struct OrderNumPath(pub WorkOrderNum);

impl<S: Send + Sync> FromRequestParts<S> for OrderNumPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(format!("bad path: {e}")))?;
        WorkOrderNum::parse(&raw)
            .map(OrderNumPath)
            .map_err(ApiError::bad_request)
    }
}

/// The request id set by the request-id layer (for logs and outbound calls).
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        ))
    }
}

/// The caller of a request with `x-access-token`: the token verified (algorithm, issuer,
/// audience, expiry pinned) and its user re-read, so that a deleted or deactivated user, or one
/// whose role changed, loses the token's powers at once.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let raw = parts
            .headers
            .get(TOKEN_HEADER)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing x-access-token header: obtain a token with POST /createjwt",
                )
            })?
            .to_str()
            .map_err(|_| ApiError::unauthorized("the x-access-token header is not a valid token"))?
            .trim()
            .to_string();
        let claims = state.keys.verify(&raw).map_err(|reason| {
            ApiError::unauthorized(format!(
                "invalid token ({reason}): log in again with POST /createjwt"
            ))
        })?;
        let entity = EntityId::parse(&claims.ent)
            .map_err(|_| ApiError::unauthorized("invalid token: log in again"))?;
        let user = UserName::parse(&claims.sub)
            .map_err(|_| ApiError::unauthorized("invalid token: log in again"))?;
        let role = Role::parse(&claims.role)
            .map_err(|_| ApiError::unauthorized("invalid token: log in again"))?;
        // A deleted or deactivated user, or one whose role changed, loses the token's powers at
        // once, whatever its lifetime. The entity's settings come with the same read.
        let ctx = state
            .store
            .caller_context(
                user.as_str(),
                &entity,
                &[
                    crate::domain::category::FOLLOWUP_REASONS,
                    crate::domain::category::NO_FOLLOWUP_REASONS,
                ],
            )
            .await?;
        match &ctx.user {
            Some(u) if u.active && u.entity == entity && u.role == role => {}
            _ => {
                return Err(ApiError::unauthorized(
                    "the token's user no longer exists, is inactive or has another role: log in again",
                ));
            }
        }
        Ok(Caller {
            entity,
            user,
            role,
            token: raw,
            settings: std::sync::Arc::new(Settings {
                config: ctx.config,
                categories: ctx.categories,
            }),
        })
    }
}

/// A `Limit` query parameter: 1 to `max`; otherwise `None`, and why in `errs`.
pub(crate) fn limit_param(
    v: &str,
    max: i64,
    errs: &mut Vec<crate::error::InvalidParam>,
) -> Option<i64> {
    match v.parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Some(n),
        _ => {
            errs.push(crate::error::InvalidParam::new(
                "Limit",
                format!("expected 1 to {max}"),
            ));
            None
        }
    }
}

/// A query parameter the endpoint does not take.
pub(crate) fn unknown_param(name: &str) -> crate::error::InvalidParam {
    crate::error::InvalidParam::new(name.to_string(), "unknown query parameter")
}
