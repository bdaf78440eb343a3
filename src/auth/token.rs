//! HS256 tokens with `iat`, `exp`, `sub`, `ent`, `role`, `iss`, `aud`. Verification pins the
//! algorithm, requires `exp`, `iss` and `aud`, and allows 30 s of clock skew.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::domain::{EntityId, Role, UserName};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub ent: String,
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

/// Allowed clock skew between Revisit's nodes and clients.
pub(crate) const LEEWAY_SECS: u64 = 30;

impl Keys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            lifetime,
        }
    }

    pub fn issue(&self, user: &UserName, entity: &EntityId, role: Role) -> anyhow::Result<String> {
        let now = jiff::Timestamp::now().as_second();
        let claims = Claims {
            sub: user.to_string(),
            ent: entity.to_string(),
            role: role.as_str().to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.lifetime.as_secs() as i64,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies a token; the error is a short reason safe to show the caller.
    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "expired",
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "algorithm not allowed"
                }
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => "wrong issuer or audience",
                ErrorKind::MissingRequiredClaim(_) => "missing claim",
                _ => "malformed",
            })
    }
}
