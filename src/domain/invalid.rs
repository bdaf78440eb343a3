//! One rejected property of a request body: the domain's validators collect these (every error
//! at once, each with its JSON path) and the HTTP layer lists them in the error object.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InvalidParam {
    pub name: String,
    pub reason: String,
    pub path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

impl InvalidParam {
    /// `path` is a JSON path (`$.RequiredParts[0].Qty`); the name is its last segment.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        let path = path.into();
        let name = path
            .rsplit(['.', '['])
            .next()
            .unwrap_or(&path)
            .trim_end_matches(']')
            .to_string();
        Self {
            name,
            reason: reason.into(),
            path,
            value: String::new(),
        }
    }
}
