//! The HTTP layer's one error type, and the one place it becomes a response: the platform's
//! "standard response object" of seiapi.md §3.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

// The domain owns the type (its validators build it); re-exported for the HTTP layer's paths.
pub use crate::domain::InvalidParam;
use crate::{domain::DomainError, store::StoreError};

/// The error object on the wire.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub invalid_params: Vec<InvalidParam>,
    /// Extra members merged into the body (e.g. `Alternatives`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            invalid_params: Vec::new(),
            extra: None,
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "urn:revisit:error:bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn invalid(detail: impl Into<String>, params: Vec<InvalidParam>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "urn:revisit:error:validation",
            "Invalid request body",
            detail,
        );
        e.invalid_params = params;
        e
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "urn:revisit:error:unauthorized",
            "Not authenticated",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "urn:revisit:error:forbidden",
            "Not allowed",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "urn:revisit:error:not-found",
            "Not found",
            detail,
        )
    }

    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, "Conflict", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:revisit:error:unavailable",
            "Service unavailable",
            detail,
        );
        e.retry_after = Some(1);
        e
    }

    /// A server fault: logged in full (with the request id of the current span), answered opaquely.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "urn:revisit:error:internal",
            "Internal error",
            "The server failed to process the request; the x-request-id header identifies it in the server's log.",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            kind: self.kind.to_string(),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            invalid_params: self.invalid_params.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut value = serde_json::to_value(self.body()).unwrap_or_default();
        if let (Some(extra), Some(obj)) = (self.extra, value.as_object_mut()) {
            obj.extend(extra);
        }
        let mut resp = (self.status, axum::Json(value)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(params) => {
                let detail = params
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.reason))
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError::invalid(detail, params)
            }
            DomainError::Conflict { kind, detail } => ApiError::conflict(kind, detail),
            DomainError::Forbidden(d) => ApiError::forbidden(d),
            DomainError::NotFound(d) => ApiError::not_found(d),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(d) => d.into(),
            StoreError::Conflict(detail) => {
                // The database's message names tables and constraints: log it, say less.
                tracing::info!(%detail, "write refused by a database constraint");
                ApiError::conflict(
                    "urn:revisit:error:conflict",
                    "the change conflicts with data written at the same time; read it again and retry",
                )
            }
            StoreError::Retry(detail) | StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ApiError::unavailable("The database is unavailable; retry shortly.")
            }
            StoreError::Other(err) => ApiError::internal(err),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
