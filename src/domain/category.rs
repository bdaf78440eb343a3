//! System categories: the fixed status codes (10) and the two lists of Closed-Incomplete reasons,
//! 15 (follow-up required, [Revisit]) and 16 (no follow-up required), which entities may replace.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{DomainError, InvalidParam, status};

pub(crate) const STATUS: &str = "10";
pub(crate) const FOLLOWUP_REASONS: &str = "15";
pub(crate) const NO_FOLLOWUP_REASONS: &str = "16";

/// A system category on the wire.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Category {
    pub code: String,
    pub desc: String,
    pub items: Vec<CategoryItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct CategoryItem {
    pub code: String,
    pub desc: String,
}

fn item(code: &str, desc: &str) -> CategoryItem {
    CategoryItem {
        code: code.into(),
        desc: desc.into(),
    }
}

/// Whether `code` names a category Revisit knows, and whether entities may replace it.
pub(crate) fn is_known(code: &str) -> bool {
    matches!(code, STATUS | FOLLOWUP_REASONS | NO_FOLLOWUP_REASONS)
}

pub(crate) fn is_editable(code: &str) -> bool {
    matches!(code, FOLLOWUP_REASONS | NO_FOLLOWUP_REASONS)
}

/// The platform's (16, 10) and Revisit's (15) defaults.
pub(crate) fn default_category(code: &str) -> Option<Category> {
    let (desc, items) = match code {
        STATUS => (
            "Work order status",
            status::ALL
                .iter()
                .map(|s| item(&s.code().to_string(), s.desc()))
                .collect(),
        ),
        FOLLOWUP_REASONS => (
            "Closed Incomplete reasons: follow-up required",
            vec![
                item("2001", "Parts required"),
                item("2002", "More time required"),
                item("2003", "Other skills required"),
                item("2004", "Customer asked for another visit"),
            ],
        ),
        NO_FOLLOWUP_REASONS => (
            "Closed Incomplete reasons: no follow-up required",
            vec![
                item("1001", "Hold for parts"),
                item("1002", "Insufficient skills"),
                item("1003", "Service refused by customer"),
                item("1004", "Service no longer required"),
            ],
        ),
        _ => return None,
    };
    Some(Category {
        code: code.into(),
        desc: desc.into(),
        items,
    })
}

/// Validates a PUT body for an editable category: `{"Desc"?: string, "Items": [{"Code", "Desc"}]}`.
/// `other` is the sibling reason category: a code may not mean both "follow-up" and "no follow-up".
pub(crate) fn parse_replacement(
    code: &str,
    body: &Value,
    other: &Category,
) -> Result<Category, DomainError> {
    let mut errs = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(DomainError::invalid("$", "expected an object with Items"));
    };
    let desc = match obj.get("Desc") {
        None | Some(Value::Null) => default_category(code).map(|c| c.desc).unwrap_or_default(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            errs.push(InvalidParam::new("$.Desc", "expected a string"));
            String::new()
        }
    };
    let mut items = Vec::new();
    match obj.get("Items") {
        Some(Value::Array(list)) => {
            for (i, it) in list.iter().enumerate() {
                let path = format!("$.Items[{i}]");
                let code = it.get("Code").and_then(Value::as_str);
                let idesc = it.get("Desc").and_then(Value::as_str);
                match (code, idesc) {
                    (Some(c), Some(d)) if !c.trim().is_empty() && c.len() <= 32 => {
                        if items.iter().any(|x: &CategoryItem| x.code == c) {
                            errs.push(InvalidParam::new(format!("{path}.Code"), "duplicate code"));
                        } else if other.items.iter().any(|x| x.code == c) {
                            errs.push(InvalidParam::new(
                                format!("{path}.Code"),
                                format!("code {c} is already in category {}", other.code),
                            ));
                        } else {
                            items.push(item(c, d));
                        }
                    }
                    (None, _) | (Some(_), Some(_)) => errs.push(InvalidParam::new(
                        format!("{path}.Code"),
                        "expected a non-empty string of at most 32 characters",
                    )),
                    (Some(_), None) => errs.push(InvalidParam::new(
                        format!("{path}.Desc"),
                        "expected a string",
                    )),
                }
            }
        }
        _ => errs.push(InvalidParam::new("$.Items", "expected an array")),
    }
    if !errs.is_empty() {
        return Err(DomainError::Invalid(errs));
    }
    Ok(Category {
        code: code.into(),
        desc,
        items,
    })
}

/// What a Closed-Incomplete reason code means for follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReasonKind {
    FollowupRequired,
    NoFollowup,
}

/// The entity's two reason lists.
#[derive(Debug, Clone)]
pub(crate) struct Reasons {
    pub followup: Category,
    pub no_followup: Category,
}

impl Reasons {
    pub(crate) fn classify(&self, code: &str) -> Option<ReasonKind> {
        if self.followup.items.iter().any(|i| i.code == code) {
            Some(ReasonKind::FollowupRequired)
        } else if self.no_followup.items.iter().any(|i| i.code == code) {
            Some(ReasonKind::NoFollowup)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_code_cannot_be_in_both_reason_lists() {
        let other = default_category(NO_FOLLOWUP_REASONS).unwrap();
        let err = parse_replacement(
            FOLLOWUP_REASONS,
            &json!({"Items": [{"Code": "1001", "Desc": "x"}]}),
            &other,
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::Invalid(p) if p[0].path == "$.Items[0].Code"));
    }
}
