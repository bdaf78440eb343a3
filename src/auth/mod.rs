//! Authentication: passwords (argon2), tokens (HS256 JWT with pinned validation) and the
//! extractor that turns `x-access-token` into the `Caller` every handler works for.

pub mod password;
pub mod token;

use crate::domain::{
    DomainError, EntityId, Role, UserName,
    category::{self, Category, Reasons},
    sysconfig::EntityConfig,
    workorder::WorkOrder,
};

/// The authenticated caller: every query made for it is scoped to `entity`. (`api::extract`
/// turns `x-access-token` into one.)
#[derive(Debug, Clone)]
pub struct Caller {
    pub entity: EntityId,
    pub user: UserName,
    pub role: Role,
    /// The token as received, forwarded unchanged to a company's own scheduler.
    pub token: String,
    /// The entity's configuration and its own reason categories, read with the user's re-check.
    pub settings: std::sync::Arc<Settings>,
}

/// What [`Caller`] carries of its entity, as stored when the request began.
#[derive(Debug, Default)]
pub struct Settings {
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The entity's own versions of the categories 15 and 16 (none: the defaults).
    pub categories: Vec<Category>,
}

impl Caller {
    /// Refuses callers whose role is not among `roles`.
    pub(crate) fn require(&self, roles: &[Role], what: &str) -> Result<(), DomainError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "the {} role may not {what}",
                self.role.as_str()
            )))
        }
    }

    pub(crate) fn is_technician(&self) -> bool {
        self.role == Role::Technician
    }

    /// A technician may only read or change orders assigned to them.
    pub(crate) fn may_see(&self, order: &WorkOrder) -> Result<(), DomainError> {
        if self.is_technician() && order.user_name() != Some(self.user.as_str()) {
            return Err(DomainError::Forbidden(format!(
                "work order {} is not assigned to {}",
                order.order_num(),
                self.user
            )));
        }
        Ok(())
    }

    /// The entity's configuration, as read with the token check.
    pub fn config(&self) -> EntityConfig {
        EntityConfig(self.settings.config.clone())
    }

    /// The entity's version of a category, else the default; `None` for an unknown code.
    pub fn category(&self, code: &str) -> Option<Category> {
        if !category::is_known(code) {
            return None;
        }
        self.settings
            .categories
            .iter()
            .find(|c| c.code == code)
            .cloned()
            .or_else(|| category::default_category(code))
    }

    /// The entity's two lists of Closed-Incomplete reasons.
    pub(crate) fn reasons(&self) -> Reasons {
        // Both are known codes with defaults: never empty.
        let get = |code| self.category(code).unwrap_or_default();
        Reasons {
            followup: get(category::FOLLOWUP_REASONS),
            no_followup: get(category::NO_FOLLOWUP_REASONS),
        }
    }
}

pub(crate) const TOKEN_HEADER: &str = "x-access-token";

/// `bytes` random bytes from the thread's CSPRNG, as lowercase hex (secrets, passwords).
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
