//! Passwords (argon2id, PHC strings) and the rules for what people type in: e-mail, name,
//! password, time zone (docs/accounts.md).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;

use super::AccountError;

/// Shortest password (characters).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password (characters).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest e-mail (bytes).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest name (characters).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest time zone name (bytes).
pub const MAX_TIME_ZONE_BYTES: usize = 64;

/// An e-mail normalised (trimmed, lower case), or `bad_email`.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let e = email.trim().to_lowercase();
    let bad = |why: &str| AccountError::invalid("bad_email", format!("e-mail {why}"));
    if e.is_empty() {
        return Err(bad("is missing"));
    }
    if e.len() > MAX_EMAIL_BYTES {
        return Err(bad(&format!("is longer than {MAX_EMAIL_BYTES} bytes")));
    }
    if e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces"));
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err(bad("must look like name@example.com"));
    };
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if local.is_empty() || domain.contains('@') || !domain.contains('.') || !labels_ok {
        return Err(bad("must look like name@example.com"));
    }
    Ok(e)
}

/// A name trimmed, or `bad_name` (1 to 100 characters, no control characters).
pub fn check_name(name: &str) -> Result<String, AccountError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(AccountError::invalid("bad_name", "name is missing"));
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(AccountError::invalid(
            "bad_name",
            format!("name is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(AccountError::invalid(
            "bad_name",
            "name must not contain control characters",
        ));
    }
    Ok(n.to_string())
}

/// `weak_password` unless 10 to 128 characters.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AccountError::invalid(
            "weak_password",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AccountError::invalid(
            "weak_password",
            format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A known IANA time zone name (`"Europe/Moscow"`, `"UTC"`), or `bad_time_zone`.
pub fn check_time_zone(tz: &str) -> Result<String, AccountError> {
    let tz = tz.trim();
    if tz.len() <= MAX_TIME_ZONE_BYTES && tz.parse::<chrono_tz::Tz>().is_ok() {
        Ok(tz.to_string())
    } else {
        Err(AccountError::invalid(
            "bad_time_zone",
            format!("time_zone {tz:?} is not an IANA time zone such as Europe/Moscow"),
        ))
    }
}

/// The argon2id PHC string of `password` (fresh random salt). CPU-heavy: call from a
/// blocking thread.
pub fn hash(password: &str) -> Result<String, AccountError> {
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false for a malformed string).
/// CPU-heavy: call from a blocking thread.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the e-mail is unknown so an unknown
/// e-mail takes as long to refuse as a wrong password.
pub fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 16] = rand::rng().random();
        hash(&format!("{random:?}")).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(
            normalize_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "", "ann", "@b.c", "a@", "a@b", "a b@c.d", "a@b@c.d", "a@.b.c", "a@b..c",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(normalize_email(&format!("{}@b.cd", "a".repeat(250))).is_err());
        assert_eq!(check_name("  Ann ").unwrap(), "Ann");
        assert!(check_name(" ").is_err());
        assert!(check_name(&"я".repeat(100)).is_ok());
        assert!(check_name(&"я".repeat(101)).is_err());
        assert!(check_name("a\u{7}b").is_err());
        assert!(check_password("123456789").is_err());
        assert!(check_password("1234567890").is_ok());
        assert!(check_password(&"x".repeat(129)).is_err());
        assert!(check_time_zone("Europe/Moscow").is_ok());
        assert!(check_time_zone("UTC").is_ok());
        assert!(check_time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn hashes_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("x", "not a hash"));
        assert_ne!(h, hash("correct horse battery").unwrap());
        assert!(!decoy().is_empty());
    }
}
