//! Password hashing with argon2id. Hashing is CPU-bound, so callers run it off the async
//! executor (`tokio::task::spawn_blocking`).

use std::sync::OnceLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

/// The fewest characters a password set over the API or the CLI may have.
pub(crate) const MIN_CHARS: usize = 8;
/// The most characters a password set over the API or the CLI may have.
pub(crate) const MAX_CHARS: usize = 1024;

/// Checks the length of a new password (in characters), the same for the admin API and the
/// CLI; the reason when it is outside [`MIN_CHARS`] to [`MAX_CHARS`].
pub(crate) fn check_length(password: &str) -> Result<(), String> {
    if (MIN_CHARS..=MAX_CHARS).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(format!(
            "the password must be {MIN_CHARS} to {MAX_CHARS} characters"
        ))
    }
}

/// [`hash`] on the blocking pool: argon2 is slow on purpose, and must not hold an executor
/// thread.
pub async fn hash_blocking(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash(&password)).await?
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Verifies `password` against `stored`; with no stored hash (unknown user) it verifies against
/// a dummy hash anyway, so an unknown user costs as much time as a wrong password.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a real password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = super::hash("secret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("secret", Some(&h)));
        assert!(!super::verify("Secret", Some(&h)));
        assert!(!super::verify("not a real password", None));
    }

    #[test]
    fn a_new_password_has_8_to_1024_characters_counted_as_characters() {
        assert!(super::check_length("1234567").is_err());
        assert!(super::check_length("12345678").is_ok());
        assert!(super::check_length(&"é".repeat(1024)).is_ok());
        assert!(super::check_length(&"x".repeat(1025)).is_err());
    }
}
