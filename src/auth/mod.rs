//! Authentication: passwords (argon2), tokens (HS256 JWT with pinned validation) and the
//! extractor that turns `x-access-token` into the `Caller` every handler works for.

pub mod password;
pub mod token;

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{
    app::AppState,
    domain::{EntityId, Role, UserName},
    error::ApiError,
};

/// The authenticated caller: every query a handler makes is scoped to `entity`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub entity: EntityId,
    pub user: UserName,
    pub role: Role,
    /// The token as received, forwarded unchanged to a company's own scheduler (seiapi.md §8).
    pub token: String,
    /// The entity's configuration and its own reason categories, read with the user's re-check.
    pub settings: std::sync::Arc<Settings>,
}

/// What [`Caller`] carries of its entity, as stored when the request began.
#[derive(Debug, Default)]
pub struct Settings {
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The entity's own versions of the categories 15 and 16 (none: the defaults).
    pub categories: Vec<crate::domain::category::Category>,
}

impl Caller {
    /// Refuses callers whose role is not among `roles` (403).
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not {what}",
                self.role.as_str()
            )))
        }
    }

    pub fn is_technician(&self) -> bool {
        self.role == Role::Technician
    }
}

pub const TOKEN_HEADER: &str = "x-access-token";

/// `bytes` random bytes from the thread's CSPRNG, as lowercase hex (secrets, passwords).
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

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
