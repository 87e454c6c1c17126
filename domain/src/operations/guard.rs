//! Confirmation tokens (single use, bound to user, session, request and plan,
//! 5 minutes) and the cluster-wide operation lock.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use model::operations::OpRequest;

#[derive(Clone, Debug)]
pub struct TokenBinding {
    pub user_id: i64,
    pub sid: String,
    pub request: OpRequest,
    /// sha256 of the plan shown to the user.
    pub plan_digest: String,
    pub confirm_name: String,
    pub needs_password: bool,
    pub title: String,
    pub expires_at_ms: i64,
}

#[derive(Default)]
pub struct TokenStore {
    tokens: Mutex<HashMap<String, TokenBinding>>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("this confirmation is unknown or was already used: prepare the operation again")]
    Unknown,
    #[error("this confirmation expired (they last 5 minutes): prepare the operation again")]
    Expired,
    #[error("this confirmation belongs to another session: prepare the operation again")]
    OtherSession,
}

impl TokenStore {
    pub fn issue(&self, binding: TokenBinding) -> String {
        let token = crate::users::random_token();
        let mut map = self.tokens.lock().expect("token map poisoned");
        let now = crate::now_ms();
        map.retain(|_, b| b.expires_at_ms > now);
        map.insert(token.clone(), binding);
        token
    }

    /// Look at a token without using it up (a mistyped name keeps it valid).
    pub fn peek(&self, token: &str, user_id: i64, sid: &str, now_ms: i64) -> Result<TokenBinding, TokenError> {
        let map = self.tokens.lock().expect("token map poisoned");
        let b = map.get(token).ok_or(TokenError::Unknown)?;
        if b.user_id != user_id || b.sid != sid {
            return Err(TokenError::OtherSession);
        }
        if b.expires_at_ms <= now_ms {
            return Err(TokenError::Expired);
        }
        Ok(b.clone())
    }

    /// Use a token up: it can never be used again.
    pub fn take(&self, token: &str) -> Option<TokenBinding> {
        self.tokens.lock().expect("token map poisoned").remove(token)
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub title: String,
    pub user: String,
    pub since_ms: i64,
}

/// One operation at a time on the cluster: within this console (in memory),
/// and across every console that manages the same cluster, through an
/// exclusive `flock` on a file in the cluster's data directory, which they
/// all mount. So a second console (a new container started beside the old
/// one, a development console) cannot run an operation, nor take a running
/// restore for an interrupted one, while the first runs one. The kernel
/// releases the file's lock when its console exits, however it exits.
#[derive(Clone, Default)]
pub struct OpLock {
    inner: Arc<Mutex<Option<Holder>>>,
    file: Option<Arc<PathBuf>>,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("busy: {} by {}", .0.title, .0.user)]
    Busy(Holder),
    #[error("cannot take the cluster's operation lock {path}: {reason}")]
    File { path: String, reason: String },
}

/// The name of the lock file in the cluster's data directory.
pub const LOCK_FILE: &str = ".pg-console-operation.lock";

/// Releases the lock when dropped (also when an operation task panics).
#[derive(Debug)]
pub struct LockGuard {
    inner: Arc<Mutex<Option<Holder>>>,
    /// Open while held: closing it releases the `flock`.
    _file: Option<File>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Ok(mut h) = self.inner.lock() {
            *h = None;
        }
    }
}

impl OpLock {
    /// A lock shared with every console that has `data_dir` (the cluster's
    /// `${DEFAULT_DATA_DIR}`). Where that directory does not exist, the lock
    /// is this console's alone: such a console touches no data directory.
    pub fn across_consoles(data_dir: &Path) -> Self {
        Self {
            inner: Default::default(),
            file: Some(Arc::new(data_dir.join(LOCK_FILE))),
        }
    }

    pub async fn try_acquire(&self, title: &str, user: &str) -> Result<LockGuard, LockError> {
        let holder = Holder {
            title: title.into(),
            user: user.into(),
            since_ms: crate::now_ms(),
        };
        {
            let mut h = self.inner.lock().expect("op lock poisoned");
            if let Some(other) = h.as_ref() {
                return Err(LockError::Busy(other.clone()));
            }
            *h = Some(holder.clone());
        }
        // Reserved in memory first; dropped (released) if the file says no.
        let mut guard = LockGuard {
            inner: self.inner.clone(),
            _file: None,
        };
        if let Some(path) = self.file.clone() {
            guard._file = crate::off_thread(move || lock_file(&path, &holder)).await?;
        }
        Ok(guard)
    }
}

/// Take the file's exclusive lock and write who holds it (for the other
/// consoles' "busy" answer). `None`: the directory does not exist.
fn lock_file(path: &Path, holder: &Holder) -> Result<Option<File>, LockError> {
    let failed = |e: &dyn std::fmt::Display| LockError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    // A file another console created and this one may only read still
    // locks (`flock` needs no write access); it just cannot say who holds it.
    let (mut f, writable) = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(f) => (f, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            (File::open(path).map_err(|e| failed(&e))?, false)
        }
        Err(e) => return Err(failed(&e)),
    };
    match f.try_lock() {
        Ok(()) => {
            if writable {
                let text = serde_json::to_string(holder).expect("a holder serialises");
                f.set_len(0)
                    .and_then(|()| f.write_all(text.as_bytes()))
                    .map_err(|e| failed(&e))?;
            }
            Ok(Some(f))
        }
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = f.read_to_string(&mut text);
            let other = serde_json::from_str::<Holder>(&text).unwrap_or(Holder {
                title: "an operation".into(),
                user: "someone".into(),
                since_ms: crate::now_ms(),
            });
            Err(LockError::Busy(Holder {
                title: format!("{} (in another console)", other.title),
                ..other
            }))
        }
        Err(TryLockError::Error(e)) => Err(failed(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(expires: i64) -> TokenBinding {
        TokenBinding {
            user_id: 1,
            sid: "s".into(),
            request: OpRequest::Reload { member: "pg-1".into() },
            plan_digest: "d".into(),
            confirm_name: "pg-1".into(),
            needs_password: false,
            title: "Reload pg-1".into(),
            expires_at_ms: expires,
        }
    }

    #[test]
    fn tokens_are_bound_single_use_and_expire() {
        let s = TokenStore::default();
        let t = s.issue(binding(i64::MAX));
        assert_eq!(s.peek(&t, 2, "s", 0).unwrap_err(), TokenError::OtherSession);
        assert_eq!(s.peek(&t, 1, "other", 0).unwrap_err(), TokenError::OtherSession);
        assert!(s.peek(&t, 1, "s", 0).is_ok());
        assert!(s.take(&t).is_some());
        assert_eq!(s.peek(&t, 1, "s", 0).unwrap_err(), TokenError::Unknown, "used up");
        let t2 = s.issue(binding(10));
        assert_eq!(s.peek(&t2, 1, "s", 10).unwrap_err(), TokenError::Expired);
    }

    fn busy(e: LockError) -> Holder {
        match e {
            LockError::Busy(h) => h,
            other => panic!("not busy: {other}"),
        }
    }

    #[tokio::test]
    async fn one_operation_at_a_time() {
        let l = OpLock::default();
        let g = l.try_acquire("Switchover", "alice").await.unwrap();
        let h = busy(l.try_acquire("Restart", "bob").await.unwrap_err());
        assert_eq!((h.title.as_str(), h.user.as_str()), ("Switchover", "alice"));
        drop(g);
        assert!(l.try_acquire("Restart", "bob").await.is_ok());
    }

    /// Two consoles on one data directory: two locks on the same file (each
    /// opens it, as two processes do; `flock` excludes open files, not
    /// processes).
    #[tokio::test]
    async fn one_operation_at_a_time_across_consoles_sharing_the_data_directory() {
        let dir = std::env::temp_dir().join(format!("pgc-oplock-{}-{}", std::process::id(), crate::now_ms()));
        std::fs::create_dir_all(&dir).unwrap();
        let (first, second) = (OpLock::across_consoles(&dir), OpLock::across_consoles(&dir));
        let g = first.try_acquire("Restore the cluster", "alice").await.unwrap();
        let h = busy(second.try_acquire("Switchover", "bob").await.unwrap_err());
        assert_eq!(
            (h.title.as_str(), h.user.as_str()),
            ("Restore the cluster (in another console)", "alice")
        );
        drop(g);
        let g2 = second.try_acquire("Switchover", "bob").await.unwrap();
        let h = busy(first.try_acquire("Restart", "carol").await.unwrap_err());
        assert_eq!(h.title, "Switchover (in another console)");
        drop(g2);
        std::fs::remove_dir_all(&dir).unwrap();
        // Without the data directory, each console's lock is its own.
        let alone = OpLock::across_consoles(&dir);
        assert!(alone.try_acquire("Switchover", "bob").await.is_ok());
    }
}

/// Verify and delete of finished backups: one at a time, with the same
/// "busy: … by … since …" answer as the operation lock. A verify may wait
/// for the one running (at most `MAX_WAITING` wait); a delete does not wait.
pub struct CatalogLock {
    sem: Arc<tokio::sync::Semaphore>,
    holder: Arc<Mutex<Option<Holder>>>,
    waiting: std::sync::atomic::AtomicUsize,
}

impl Default for CatalogLock {
    fn default() -> Self {
        CatalogLock {
            sem: Arc::new(tokio::sync::Semaphore::new(1)),
            holder: Arc::default(),
            waiting: Default::default(),
        }
    }
}

/// Held while a verify or delete runs; releases (and forgets the holder) when dropped.
pub struct CatalogGuard {
    _permit: tokio::sync::OwnedSemaphorePermit,
    holder: Arc<Mutex<Option<Holder>>>,
}

impl Drop for CatalogGuard {
    fn drop(&mut self) {
        if let Ok(mut h) = self.holder.lock() {
            *h = None;
        }
    }
}

impl CatalogLock {
    pub const MAX_WAITING: usize = 2;

    fn holder_now(&self) -> Holder {
        self.holder
            .lock()
            .expect("catalog lock poisoned")
            .clone()
            .unwrap_or(Holder {
                title: "another backup action".into(),
                user: "someone".into(),
                since_ms: crate::now_ms(),
            })
    }

    fn held(&self, permit: tokio::sync::OwnedSemaphorePermit, title: &str, user: &str) -> CatalogGuard {
        *self.holder.lock().expect("catalog lock poisoned") = Some(Holder {
            title: title.into(),
            user: user.into(),
            since_ms: crate::now_ms(),
        });
        CatalogGuard {
            _permit: permit,
            holder: self.holder.clone(),
        }
    }

    /// Take the lock now, or say who holds it.
    pub fn try_acquire(&self, title: &str, user: &str) -> Result<CatalogGuard, Holder> {
        match self.sem.clone().try_acquire_owned() {
            Ok(p) => Ok(self.held(p, title, user)),
            Err(_) => Err(self.holder_now()),
        }
    }

    /// Wait for the lock behind at most `MAX_WAITING` others, or say who holds it.
    pub async fn acquire_queued(&self, title: &str, user: &str) -> Result<CatalogGuard, Holder> {
        use std::sync::atomic::Ordering;
        if let Ok(g) = self.try_acquire(title, user) {
            return Ok(g);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= Self::MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(self.holder_now());
        }
        let p = self.sem.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let p = p.map_err(|_| self.holder_now())?;
        Ok(self.held(p, title, user))
    }
}

#[cfg(test)]
mod catalog_tests {
    use super::*;

    #[tokio::test]
    async fn deletes_do_not_wait_and_verifies_queue_with_a_bound() {
        let l = Arc::new(CatalogLock::default());
        let g = l.try_acquire("Verify b1", "alice").unwrap();
        let busy = l.try_acquire("Delete b2", "bob").err().unwrap();
        assert_eq!((busy.title.as_str(), busy.user.as_str()), ("Verify b1", "alice"));
        let waiters: Vec<_> = (0..CatalogLock::MAX_WAITING)
            .map(|i| {
                let l = l.clone();
                tokio::spawn(async move { l.acquire_queued(&format!("Verify q{i}"), "carol").await.is_ok() })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            l.acquire_queued("Verify extra", "dave").await.is_err(),
            "the queue is full"
        );
        drop(g);
        for w in waiters {
            assert!(w.await.unwrap(), "queued verifies run in turn");
        }
    }
}
