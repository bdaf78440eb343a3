//! The domain: validated types and the rules of docs/api.md, with no HTTP and no SQL.

pub(crate) mod bookjob;
pub mod category;
pub mod followup;
pub mod ids;
pub mod invalid;
pub mod status;
pub mod sysconfig;
pub mod time;
pub mod workorder;

pub use ids::{EntityId, Role, UserName, WorkOrderNum};
pub use invalid::InvalidParam;

/// The domain layer's error: a rule said no.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    #[error("invalid: {0:?}")]
    Invalid(Vec<InvalidParam>),
    /// Invalid, with a detail of its own rather than one made of the parameters' reasons.
    #[error("invalid: {detail}")]
    InvalidRequest {
        detail: String,
        params: Vec<InvalidParam>,
    },
    #[error("conflict: {detail}")]
    Conflict { kind: &'static str, detail: String },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
}

impl DomainError {
    pub fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(vec![InvalidParam::new(path, reason)])
    }
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            detail: detail.into(),
        }
    }
}
