//! Extractors that answer with the error object instead of axum's plain-text rejections.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, rejection::BytesRejection},
    http::{StatusCode, header, request::Parts},
};
use serde_json::{Map, Value};

use crate::{app::REQUEST_ID, domain::WorkOrderNum, error::ApiError};

/// A request body that must be a JSON object, sent as `application/json`. Unknown properties
/// are kept; types are checked by the domain.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
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
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "urn:revisit:error:unsupported-media-type",
                "Unsupported media type",
                "send the body as JSON with the header Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "urn:revisit:error:body-too-large",
                        "Request body too large",
                        "the request body exceeds the server's limit (1 MiB by default)",
                    )
                } else {
                    ApiError::bad_request(format!("the request body could not be read: {e}"))
                }
            })?;
        // serde_json refuses nesting deeper than 128 levels, so a hostile body cannot exhaust
        // the stack.
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "urn:revisit:error:malformed-json",
                "Malformed JSON",
                format!("the body is not valid JSON: {e}"),
            )
        })?;
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
            Value::Object(m) => Ok(JsonObject(m)),
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
