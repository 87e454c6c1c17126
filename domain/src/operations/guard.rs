//! Confirmation tokens (single use, bound to user, session, request and plan,
//! 5 minutes) and the cluster-wide operation lock.

use std::collections::HashMap;
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

#[derive(Clone, Debug, PartialEq)]
pub struct Holder {
    pub title: String,
    pub user: String,
    pub since_ms: i64,
}

/// One operation at a time on the cluster.
#[derive(Clone, Default)]
pub struct OpLock {
    inner: Arc<Mutex<Option<Holder>>>,
}

/// Releases the lock when dropped (also when an operation task panics).
#[derive(Debug)]
pub struct LockGuard {
    inner: Arc<Mutex<Option<Holder>>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Ok(mut h) = self.inner.lock() {
            *h = None;
        }
    }
}

impl OpLock {
    pub fn try_acquire(&self, title: &str, user: &str) -> Result<LockGuard, Holder> {
        let mut h = self.inner.lock().expect("op lock poisoned");
        if let Some(holder) = h.as_ref() {
            return Err(holder.clone());
        }
        *h = Some(Holder {
            title: title.into(),
            user: user.into(),
            since_ms: crate::now_ms(),
        });
        Ok(LockGuard {
            inner: self.inner.clone(),
        })
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

    #[test]
    fn one_operation_at_a_time() {
        let l = OpLock::default();
        let g = l.try_acquire("Switchover", "alice").unwrap();
        let busy = l.try_acquire("Restart", "bob").unwrap_err();
        assert_eq!((busy.title.as_str(), busy.user.as_str()), ("Switchover", "alice"));
        drop(g);
        assert!(l.try_acquire("Restart", "bob").is_ok());
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
