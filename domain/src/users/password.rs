//! Password rules (NIST SP 800-63B style) and argon2id hashing off the async
//! runtime with a cap on concurrent hash computations.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 256;

/// Common passwords (Openwall's public-domain list, 3 500+ entries).
const COMMON: &str = include_str!("common-passwords.txt");

fn common() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .filter(|l| !l.starts_with("#!comment") && !l.is_empty())
            .map(|l| l.to_lowercase())
            .collect()
    })
}

pub fn common_password_count() -> usize {
    common().len()
}

/// Why a password is refused; the message says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordRuleError {
    #[error("the password is too short: use at least {MIN_LEN} characters (a few words make a good one)")]
    TooShort,
    #[error("the password is too long: use at most {MAX_LEN} characters")]
    TooLong,
    #[error("the password is one of the most common passwords: choose another")]
    Common,
    #[error("the password must not contain the user name: choose another")]
    ContainsName,
}

/// Check `password` for `user`. No composition rules, no truncation.
pub fn check_password(user: &str, password: &str) -> Result<(), PasswordRuleError> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(PasswordRuleError::TooShort);
    }
    if chars > MAX_LEN {
        return Err(PasswordRuleError::TooLong);
    }
    let lower = password.to_lowercase();
    if common().contains(&lower)
        || is_repetition_of_common(&lower)
        || is_common_with_affixes(&lower)
        || is_sequence(&lower)
    {
        return Err(PasswordRuleError::Common);
    }
    let name = user.trim().to_lowercase();
    if name.len() >= 3 && lower.contains(&name) {
        return Err(PasswordRuleError::ContainsName);
    }
    Ok(())
}

/// A common password with digits or punctuation around it: `password1234`,
/// `!!iloveyou2024`.
fn is_common_with_affixes(lower: &str) -> bool {
    let core = lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ');
    core.chars().count() >= 4 && core.len() < lower.len() && common().contains(core)
}

/// Keyboard or digit runs: `123456789012`, `qwertyuiopas`, `abcdefghijkl`.
fn is_sequence(lower: &str) -> bool {
    const RUNS: [&str; 4] = [
        "12345678901234567890123456789012345678901234567890",
        "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
        "09876543210987654321098765432109876543210987654321",
    ];
    RUNS.iter().any(|r| r.contains(lower))
}

/// `passwordpassword`, `123456123456`, `qwerty2024qwerty2024`...
fn is_repetition_of_common(lower: &str) -> bool {
    let n = lower.len();
    (1..=n / 2).filter(|k| n % k == 0).any(|k| {
        let Some(unit) = lower.get(..k) else { return false };
        lower.as_bytes().chunks(k).all(|c| c == unit.as_bytes()) && (k < 4 || common().contains(unit))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password hashing task failed: {0}")]
    Task(String),
    /// The queue of hashes waiting to run is full: answer 429, retry later.
    #[error("the console is checking many passwords at once: try again in a second")]
    Busy,
}

/// argon2id with the argon2 crate's defaults (m=19456 KiB, t=2, p=1), run on
/// the blocking pool, at most `max_concurrent` at once and at most
/// `max_queued` waiting; more fail at once with [`HashError::Busy`].
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Self {
        Self::with_queue(max_concurrent, 4 * max_concurrent.max(1))
    }

    pub fn with_queue(max_concurrent: usize, max_queued: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queued,
        }
    }

    /// Run `f` on the blocking pool, at most `max_concurrent` at once.
    async fn limited<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(HashError::Busy);
                }
                let p = self.permits.clone().acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                p.map_err(|e| HashError::Task(e.to_string()))?
            }
        };
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| HashError::Task(e.to_string()))?
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pw = password.to_string();
        self.limited(move || hash_now(&pw)).await
    }

    /// Verify `password` against `hash`. With `hash == None` (unknown user) a
    /// dummy hash is verified so both cases take the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let pw = password.to_string();
        let (hash, real) = match hash {
            Some(h) => (h.to_string(), true),
            None => (dummy_hash().to_string(), false),
        };
        self.limited(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| HashError::Hash(e.to_string()))?;
            Ok(Argon2::default().verify_password(pw.as_bytes(), &parsed).is_ok() && real)
        })
        .await
    }
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now("dummy password for unknown users").expect("argon2 hashes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(common_password_count() >= 1000);
        assert_eq!(check_password("alice", "short"), Err(PasswordRuleError::TooShort));
        assert_eq!(
            check_password("alice", &"x".repeat(257)),
            Err(PasswordRuleError::TooLong)
        );
        assert!(check_password("alice", &"correct horse battery staple ".repeat(8)[..200]).is_ok());
        assert_eq!(
            check_password("alice", "password1234"),
            Err(PasswordRuleError::Common),
            "in the list"
        );
        assert_eq!(
            check_password("alice", "PasswordPassword"),
            Err(PasswordRuleError::Common)
        );
        assert_eq!(
            check_password("alice", "aaaaaaaaaaaaaa"),
            Err(PasswordRuleError::Common)
        );
        assert_eq!(
            check_password("alice", "!!iloveyou2024"),
            Err(PasswordRuleError::Common)
        );
        assert_eq!(check_password("alice", "123456789012"), Err(PasswordRuleError::Common));
        assert_eq!(check_password("alice", "qwertyuiopasd"), Err(PasswordRuleError::Common));
        assert_eq!(
            check_password("alice", "xx-Alice-likes-tea"),
            Err(PasswordRuleError::ContainsName)
        );
        assert!(check_password("alice", "blue tractor on the moon").is_ok());
        // No truncation: a long password differs from its prefix.
        assert!(
            check_password("bob", "ünïcödé-wörd").is_ok(),
            "12 characters, counted as characters"
        );
        assert_eq!(
            check_password("bob", "é".repeat(12).as_str()),
            Err(PasswordRuleError::Common),
            "one repeated character"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_is_bounded() {
        let h = PasswordHasher::with_queue(1, 2);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.verify("blue tractor on the moon", None).await })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Err(HashError::Busy)) {
                busy += 1;
            }
        }
        assert!(busy >= 1, "at most 1 running + 2 queued: some of 8 must be refused");
        assert!(busy <= 5, "{busy}");
    }

    #[tokio::test]
    async fn hashes_are_argon2id_defaults_and_verify() {
        let h = PasswordHasher::new(2);
        let hash = h.hash("blue tractor on the moon").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(h.verify("blue tractor on the moon", Some(&hash)).await.unwrap());
        assert!(!h.verify("blue tractor on the moo", Some(&hash)).await.unwrap());
        assert!(
            !h.verify("blue tractor on the moon", None).await.unwrap(),
            "unknown user never verifies"
        );
    }
}
