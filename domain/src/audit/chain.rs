//! The audit log's tamper evidence.
//!
//! Each row carries `hash = HMAC-SHA256(key, previous hash ‖ canonical row)`
//! with a key that lives outside the database (the console's secrets file,
//! created at first start), so someone holding only the SQLite file can
//! neither rewrite a row nor recompute the chain after a change. The chain's
//! head (last id + hash) is recorded outside the database too, signed with
//! the same key: in a head file beside the key, in the console's log after
//! every batch of appends, and as a signed line an admin can keep elsewhere
//! (`pg-console audit head`). That catches a deleted tail.
//!
//! Rows written before the key existed (older consoles) were chained with
//! plain sha256; the head file records up to which id (`legacy_through`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const KEY_VAR: &str = "AUDIT_HMAC_KEY";

#[derive(Debug, thiserror::Error)]
pub enum ChainKeyError {
    #[error("cannot read the console secrets file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot create the console secrets file {path}: {source}; check its directory's permissions")]
    Write { path: String, source: std::io::Error },
    #[error("the console secrets file {0} has no valid {KEY_VAR} (64 hex digits)")]
    Invalid(String),
}

/// The chain's key and where its head is recorded.
#[derive(Clone)]
pub struct ChainKey {
    key: [u8; 32],
    head_file: PathBuf,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKey")
            .field("key", &"[redacted]")
            .field("head_file", &self.head_file)
            .finish()
    }
}

/// The last row of the chain, as recorded outside the database.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    pub id: i64,
    pub hash: String,
    pub at_ms: i64,
    /// Rows up to this id were chained with plain sha256 (before the key).
    pub legacy_through: i64,
}

impl ChainKey {
    /// Read the key from `secrets_file`, creating the file (mode 600) with a
    /// new random key when it does not exist.
    pub fn load_or_create(secrets_file: &Path) -> Result<ChainKey, ChainKeyError> {
        let head_file = secrets_file.with_file_name("audit-head.json");
        let path = secrets_file.display().to_string();
        match std::fs::read_to_string(secrets_file) {
            Ok(text) => {
                let hex_key = text
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .find(|(k, _)| k.trim() == KEY_VAR)
                    .map(|(_, v)| v.trim().to_string())
                    .ok_or_else(|| ChainKeyError::Invalid(path.clone()))?;
                let bytes = hex::decode(&hex_key).map_err(|_| ChainKeyError::Invalid(path.clone()))?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| ChainKeyError::Invalid(path.clone()))?;
                Ok(ChainKey { key, head_file })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                write_private(
                    secrets_file,
                    &format!(
                        "# pg-console's own secrets; keep outside the database and never share.\n{KEY_VAR}={}\n",
                        hex::encode(key)
                    ),
                )
                .map_err(|source| ChainKeyError::Write { path, source })?;
                Ok(ChainKey { key, head_file })
            }
            Err(source) => Err(ChainKeyError::Read { path, source }),
        }
    }

    /// A key for tests and tools (no file).
    pub fn from_bytes(key: [u8; 32], head_file: PathBuf) -> ChainKey {
        ChainKey { key, head_file }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// The keyed hash of a row.
    pub fn row_hash(&self, prev: &str, canonical: &str) -> String {
        let mut m = self.mac();
        m.update(prev.as_bytes());
        m.update(canonical.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    fn sign(&self, text: &str) -> String {
        let mut m = self.mac();
        m.update(b"pg-console audit head v1\n");
        m.update(text.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// The head as one signed line (for the log, the head file, and admins
    /// who keep a copy elsewhere).
    pub fn signed_line(&self, h: &Head) -> String {
        let body = format!(
            "audit-head v1 id={} hash={} at_ms={} legacy_through={}",
            h.id, h.hash, h.at_ms, h.legacy_through
        );
        let sig = self.sign(&body);
        format!("{body} sig={sig}")
    }

    /// Parse and check a signed head line; None when malformed or forged.
    pub fn parse_signed(&self, line: &str) -> Option<Head> {
        let (body, sig) = line.trim().rsplit_once(" sig=")?;
        if self.sign(body) != sig {
            return None;
        }
        let mut h = Head {
            id: -1,
            hash: String::new(),
            at_ms: 0,
            legacy_through: 0,
        };
        let rest = body.strip_prefix("audit-head v1 ")?;
        for kv in rest.split(' ') {
            let (k, v) = kv.split_once('=')?;
            match k {
                "id" => h.id = v.parse().ok()?,
                "hash" => h.hash = v.to_string(),
                "at_ms" => h.at_ms = v.parse().ok()?,
                "legacy_through" => h.legacy_through = v.parse().ok()?,
                _ => return None,
            }
        }
        (h.id >= 0).then_some(h)
    }

    pub fn head_file(&self) -> &Path {
        &self.head_file
    }

    /// The recorded head: Ok(None) when there is no head file yet,
    /// Err when it exists but its signature is wrong.
    pub fn read_head(&self) -> Result<Option<Head>, String> {
        match std::fs::read_to_string(&self.head_file) {
            Ok(t) => self.parse_signed(&t).map(Some).ok_or_else(|| {
                format!(
                    "the head file {} is not signed with this console's key",
                    self.head_file.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read the head file {}: {e}", self.head_file.display())),
        }
    }

    /// Record `h` unless the file already holds a later head (another
    /// process, e.g. the CLI, may append to the same database).
    pub fn write_head(&self, h: &Head) -> std::io::Result<()> {
        if let Ok(Some(cur)) = self.read_head() {
            if cur.id > h.id {
                return Ok(());
            }
        }
        write_private(&self.head_file, &format!("{}\n", self.signed_line(h)))
    }
}

/// Plain sha256 chaining (rows before the key existed).
pub fn legacy_hash(prev: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Write `text` to `path` atomically (temp file, fsync, rename), mode 600.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ChainStatus {
    Empty,
    /// Every row through `#id` checks out (and the recorded head is there).
    VerifiedThrough(i64),
    /// A row's content no longer matches its hash.
    RowAltered(i64),
    /// From this row on, hashes were recomputed without the console's key.
    ChainRewritten(i64),
    /// Rows between two ids are gone.
    RowsMissing {
        after: i64,
        before: i64,
    },
    /// The last rows are gone: the database ends at `last`, the console
    /// recorded `head`.
    TailDeleted {
        last: i64,
        head: i64,
    },
    /// The chain checks out but the head could not be checked.
    HeadUnchecked {
        through: i64,
        why: String,
    },
    /// The head file is there but not signed with this console's key.
    HeadForged(String),
}

impl ChainStatus {
    pub fn is_broken(&self) -> bool {
        !matches!(
            self,
            ChainStatus::Empty | ChainStatus::VerifiedThrough(_) | ChainStatus::HeadUnchecked { .. }
        )
    }
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainStatus::Empty => write!(f, "empty"),
            ChainStatus::VerifiedThrough(n) => write!(f, "verified through #{n}"),
            ChainStatus::RowAltered(n) => write!(f, "broken at #{n}: the row was changed after it was written"),
            ChainStatus::ChainRewritten(n) => write!(
                f,
                "broken at #{n}: the chain was recomputed from here without the console's key"
            ),
            ChainStatus::RowsMissing { after, before } => {
                write!(
                    f,
                    "broken at #{before}: rows after #{after} and before #{before} were deleted"
                )
            }
            ChainStatus::TailDeleted { last, head } => write!(
                f,
                "broken after #{last}: the console wrote through #{head}, so the last rows were deleted"
            ),
            ChainStatus::HeadUnchecked { through, why } => {
                write!(f, "verified through #{through}; the head could not be checked: {why}")
            }
            ChainStatus::HeadForged(why) => write!(f, "broken: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_heads_round_trip_and_forgeries_are_rejected() {
        let k = ChainKey::from_bytes([7; 32], PathBuf::from("/nonexistent"));
        let h = Head {
            id: 42,
            hash: "ab".repeat(32),
            at_ms: 1_795_900_000_000,
            legacy_through: 3,
        };
        let line = k.signed_line(&h);
        assert_eq!(k.parse_signed(&line), Some(h.clone()));
        assert_eq!(k.parse_signed(&line.replace("id=42", "id=41")), None, "edited");
        let other = ChainKey::from_bytes([8; 32], PathBuf::from("/nonexistent"));
        assert_eq!(other.parse_signed(&line), None, "another key");
        assert_ne!(k.row_hash(GENESIS, "[1]"), legacy_hash(GENESIS, "[1]"));
        assert_ne!(k.row_hash(GENESIS, "[1]"), other.row_hash(GENESIS, "[1]"));
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pgc-chainkey-{}-{}", std::process::id(), crate::now_ms()));
        let f = dir.join("console-secrets.env");
        let a = ChainKey::load_or_create(&f).unwrap();
        let b = ChainKey::load_or_create(&f).unwrap();
        assert_eq!(a.row_hash(GENESIS, "x"), b.row_hash(GENESIS, "x"), "same key on reload");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&f, "AUDIT_HMAC_KEY=zz\n").unwrap();
        assert!(
            ChainKey::load_or_create(&f).is_err(),
            "a damaged key is an error, not a new key"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
