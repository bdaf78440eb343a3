//! Typed identifiers: an `EntityId` cannot be passed where a `WorkOrderNum` is expected, and
//! each can only exist if it is valid ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Serialize};

fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(|c| !c.is_control()) && s.trim() == s
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                if s == "." || s == ".." {
                    Err(format!("{} cannot be \".\" or \"..\"", $what))
                } else if valid_token(s, $max) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(format!(
                        "{} must be 1 to {} characters without control characters or surrounding spaces",
                        $what, $max
                    ))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A tenant: one service company.
    EntityId, 64, "an entity id"
);
string_id!(
    /// A work order's number, unique within its entity. Never `.` or `..`, which no URL keeps
    /// as one path segment, even percent-encoded (a pass-through `{0}`).
    WorkOrderNum, 64, "a work order number"
);
string_id!(
    /// A user's login name, unique across the installation (log-in names no entity).
    UserName, 64, "a user name"
);

/// Roles of docs/api.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Dispatcher,
    Technician,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Technician => "technician",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "dispatcher" => Ok(Role::Dispatcher),
            "technician" => Ok(Role::Technician),
            _ => Err(format!(
                "unknown role {s:?}: expected admin, dispatcher or technician"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_empty_long_and_control_characters() {
        assert!(WorkOrderNum::parse("WO-1").is_ok());
        assert!(WorkOrderNum::parse("").is_err());
        assert!(WorkOrderNum::parse(" WO").is_err());
        assert!(WorkOrderNum::parse("a\nb").is_err());
        assert!(WorkOrderNum::parse(&"x".repeat(65)).is_err());
        // Dot segments: a URL would not keep them as one path segment.
        assert!(WorkOrderNum::parse(".").is_err());
        assert!(WorkOrderNum::parse("..").is_err());
        assert!(WorkOrderNum::parse("...").is_ok());
    }
}
