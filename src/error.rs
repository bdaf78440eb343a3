//! The HTTP layer's one error type, and the one place where errors become the platform's
//! "standard response object" (README, "Errors"): every layer's error is mapped to a status,
//! a `type` and a `detail` here, and nowhere else.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

// The domain owns the type (its validators build it); re-exported for the HTTP layer's paths.
pub use crate::domain::InvalidParam;
use crate::{
    booking::FollowupError,
    domain::{DomainError, followup::ClaimOutcome},
    gateway::GatewayError,
    schedule::ScheduleError,
    store::StoreError,
};

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
    fn new(
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

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
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

    /// Bad query parameters, each named in `params`: titled as docs/api.md says, not as a body.
    pub(crate) fn invalid_query(detail: impl Into<String>, params: Vec<InvalidParam>) -> Self {
        let mut e = Self::invalid(detail, params);
        e.title = "Invalid query parameter";
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

    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "urn:revisit:error:forbidden",
            "Not allowed",
            detail,
        )
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
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

    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "urn:revisit:error:unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with the header Content-Type: application/json",
        )
    }

    pub(crate) fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:revisit:error:body-too-large",
            "Request body too large",
            "the request body exceeds the server's limit (1 MiB by default)",
        )
    }

    pub(crate) fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "urn:revisit:error:malformed-json",
            "Malformed JSON",
            detail,
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "urn:revisit:error:method-not-allowed",
            "Method not allowed",
            "this route does not accept that method",
        )
    }

    /// The body did not arrive within the server's body read timeout.
    pub(crate) fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "urn:revisit:error:request-timeout",
            "Request timeout",
            "the request body did not arrive in time; send it again",
        )
    }

    /// A connection past the server's connection limits (`crate::server`).
    pub(crate) fn too_many_connections() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:revisit:error:too-many-connections",
            "Too many connections",
            "the server has as many connections open as it allows (from this address, or in all); retry in a moment",
        );
        e.retry_after = Some(1);
        e
    }

    /// The error object for an answer the HTTP server gave by itself, to a request it could not
    /// parse (`crate::server`).
    pub fn bare(status: u16) -> Self {
        match status {
            408 => Self::request_timeout(),
            413 => Self::body_too_large(),
            414 => Self::new(
                StatusCode::URI_TOO_LONG,
                "urn:revisit:error:uri-too-long",
                "URI too long",
                "the request's URI is longer than the server reads",
            ),
            431 => Self::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "urn:revisit:error:headers-too-large",
                "Request headers too large",
                "the request's headers are too large or too many",
            ),
            other => Self::new(
                StatusCode::from_u16(other).unwrap_or(StatusCode::BAD_REQUEST),
                "urn:revisit:error:bad-request",
                "Bad request",
                "the request is not valid HTTP/1.1 (its request line or a header is malformed, or its Content-Length is invalid or repeated)",
            ),
        }
    }

    /// Another re-optimisation of the work center is under way (this process or another node).
    pub(crate) fn reoptimization_running(service_area_id: &str) -> Self {
        let mut e = Self::new(
            StatusCode::CONFLICT,
            "urn:revisit:error:reoptimization-running",
            "Conflict",
            format!("work center {service_area_id} is being re-optimised; retry in a moment"),
        );
        e.retry_after = Some(2);
        e
    }

    /// A server fault: logged in full (with the request id of the current span), answered opaquely.
    pub(crate) fn internal(err: impl std::fmt::Display) -> Self {
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
            DomainError::InvalidRequest { detail, params } => ApiError::invalid(detail, params),
            DomainError::Conflict { kind, detail } => ApiError::conflict(kind, detail),
            DomainError::Forbidden(d) => ApiError::forbidden(d),
            DomainError::NotFound(d) => ApiError::not_found(d),
        }
    }
}

/// A body that does not deserialize into its type: the property's JSON path
/// (`$.Technician.Home.Lat`) and serde's reason.
impl From<serde_path_to_error::Error<serde_json::Error>> for ApiError {
    fn from(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = format!("$.{}", e.path())
            .replace("$..", "$")
            .trim_end_matches('.')
            .to_string();
        DomainError::invalid(path, e.inner().to_string()).into()
    }
}

/// A scheduler set-up object the scheduler's model refuses, each reason at its JSON path.
impl From<Vec<revisit_scheduler::Invalid>> for ApiError {
    fn from(errs: Vec<revisit_scheduler::Invalid>) -> Self {
        DomainError::Invalid(
            errs.into_iter()
                .map(|e| InvalidParam::new(e.path, e.reason))
                .collect(),
        )
        .into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(d) => d.into(),
            StoreError::Duplicate(detail) | StoreError::Overlap(detail) => {
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
            e @ (StoreError::ClaimLost | StoreError::Corrupt(_) | StoreError::Other(_)) => {
                ApiError::internal(e)
            }
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let detail = e.to_string();
        let (status, kind, title) = match &e {
            GatewayError::Refused { .. } => (
                StatusCode::BAD_GATEWAY,
                "urn:revisit:error:upstream-address-refused",
                "Scheduler endpoint not allowed",
            ),
            GatewayError::Unreachable { .. } => (
                StatusCode::BAD_GATEWAY,
                "urn:revisit:error:upstream-unreachable",
                "Scheduler unreachable",
            ),
            GatewayError::Timeout { .. } => (
                StatusCode::GATEWAY_TIMEOUT,
                "urn:revisit:error:upstream-timeout",
                "Scheduler timed out",
            ),
            GatewayError::TooLarge { .. } => (
                StatusCode::BAD_GATEWAY,
                "urn:revisit:error:upstream-answer-too-large",
                "Scheduler answer too large",
            ),
            GatewayError::Redirect { .. } => (
                StatusCode::BAD_GATEWAY,
                "urn:revisit:error:upstream-redirect",
                "Scheduler redirected",
            ),
            GatewayError::NotJson { .. } | GatewayError::Invalid { .. } => (
                StatusCode::BAD_GATEWAY,
                "urn:revisit:error:upstream-invalid-answer",
                "Scheduler answer invalid",
            ),
            GatewayError::CircuitOpen { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:revisit:error:upstream-circuit-open",
                "Scheduler temporarily suspended",
            ),
        };
        let mut err = ApiError::new(status, kind, title, detail);
        if let GatewayError::CircuitOpen { retry_after, .. } = e {
            // Whole seconds, rounded up: a client that waits that long finds the probe allowed.
            let ms = retry_after.as_millis() as u64;
            err.retry_after = Some(ms.div_ceil(1000).max(1));
        }
        err
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Domain(d) => d.into(),
            ScheduleError::Store(s) => s.into(),
            ScheduleError::Gateway(g) => g.into(),
            ScheduleError::Fault(f) => ApiError::internal(f),
        }
    }
}

impl From<crate::reoptimize::ReoptError> for ApiError {
    fn from(e: crate::reoptimize::ReoptError) -> Self {
        match e {
            crate::reoptimize::ReoptError::Domain(d) => d.into(),
            crate::reoptimize::ReoptError::Store(s) => s.into(),
            crate::reoptimize::ReoptError::Schedule(s) => s.into(),
        }
    }
}

impl From<FollowupError> for ApiError {
    fn from(e: FollowupError) -> Self {
        match e {
            FollowupError::Domain(d) => d.into(),
            FollowupError::Store(s) => s.into(),
            FollowupError::Schedule(s) => s.into(),
            FollowupError::SlotUnavailable {
                detail,
                alternatives,
            } => {
                let mut err = ApiError::conflict("urn:revisit:error:slot-unavailable", detail);
                let mut extra = serde_json::Map::new();
                extra.insert(
                    "Alternatives".into(),
                    serde_json::Value::Array(alternatives),
                );
                err.extra = Some(extra);
                err
            }
            FollowupError::Busy(detail) => {
                let mut e = ApiError::unavailable(detail);
                // The queue was already longer than the wait allowed: do not come back at once.
                e.retry_after = Some(5);
                e
            }
            FollowupError::Ledger { outcome, original } => match *outcome {
                ClaimOutcome::KeyReused => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "urn:revisit:error:idempotency-key-reused",
                    "Idempotency key reused",
                    "this Idempotency-Key was used with a different request body; use a new key for a new request",
                ),
                ClaimOutcome::AlreadyBooked(r) => ApiError::conflict(
                    "urn:revisit:error:followup-already-booked",
                    format!(
                        "work order {original} already has the follow-up {} booked; read it with GET /seiapi/v3/trans/WorkOrder/{original}/Followup",
                        r.order_num.as_deref().unwrap_or("(unknown)")
                    ),
                ),
                ClaimOutcome::Unknown => ApiError::conflict(
                    "urn:revisit:error:followup-outcome-unknown",
                    format!(
                        "an earlier request to book a follow-up for work order {original} reached the company's scheduler without a known outcome; send that request again (with its Idempotency-Key, or the same body) to complete it before booking another"
                    ),
                ),
                ClaimOutcome::InFlight { until_ms } => {
                    let mut e = ApiError::conflict(
                        "urn:revisit:error:request-in-flight",
                        format!(
                            "a booking of a follow-up for work order {original} is still being processed; retry after Retry-After seconds"
                        ),
                    );
                    // The real wait: until the claim's call ends at the latest.
                    let left = until_ms - jiff::Timestamp::now().as_millisecond();
                    e.retry_after = Some(u64::try_from(left.max(1)).unwrap_or(1).div_ceil(1000));
                    e
                }
                ClaimOutcome::New | ClaimOutcome::Resume(_) | ClaimOutcome::Replay(_) => {
                    ApiError::internal(format!(
                        "the follow-up ledger's answer for {original} reached the error mapping"
                    ))
                }
            },
            FollowupError::NoScheduler(property) => ApiError::conflict(
                "urn:revisit:error:no-scheduler",
                format!(
                    "the entity configuration has no {property}; an admin sets it (builtin: or an https URI) with POST /seiapi/v3/SysConfig/mobility"
                ),
            ),
            FollowupError::Task(e) => ApiError::internal(e),
        }
    }
}
