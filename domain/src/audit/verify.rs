//! Checking the chain. A full check walks the table in batches (memory
//! O(batch), not O(table)); after it, checks are incremental from the last
//! verified row, so an Audit page load costs O(rows appended since). Both
//! compare the end of the table with the head recorded outside the
//! database, which catches a deleted tail.

use super::chain::{legacy_hash, ChainStatus, GENESIS};
use super::{AuditLog, AuditRecord};

const BATCH: i64 = 5_000;

/// Where a check stopped: the last row that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Checkpoint {
    pub id: i64,
    pub hash: String,
}

impl Checkpoint {
    pub fn genesis() -> Self {
        Checkpoint {
            id: 0,
            hash: GENESIS.into(),
        }
    }
}

/// The state of checking so far.
#[derive(Clone, Debug, Default)]
pub(super) struct Verified {
    pub checkpoint: Option<Checkpoint>,
    pub broken: Option<ChainStatus>,
    pub full_at_ms: Option<i64>,
}

/// What the Audit page shows about the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub status: ChainStatus,
    /// When the whole table was last checked (None: not yet since start).
    pub full_check_at_ms: Option<i64>,
    /// The head as a signed line, to keep outside the console.
    pub signed_head: Option<String>,
}

enum RowCheck {
    Ok,
    /// The link to the previous row is wrong.
    Link,
    /// The row's own hash is wrong.
    Hash,
}

impl AuditLog {
    fn check_row(&self, prev: &Checkpoint, r: &AuditRecord) -> RowCheck {
        if r.prev_hash != prev.hash {
            return RowCheck::Link;
        }
        let canonical = r.canonical();
        let expected = if r.id <= self.legacy_through() {
            legacy_hash(&r.prev_hash, &canonical)
        } else {
            self.key().row_hash(&r.prev_hash, &canonical)
        };
        if expected == r.hash {
            RowCheck::Ok
        } else {
            RowCheck::Hash
        }
    }

    /// Check the rows after `from`; Ok(last good checkpoint) or the break.
    async fn walk(&self, from: Checkpoint) -> Result<Result<Checkpoint, ChainStatus>, sqlx::Error> {
        let mut prev = from;
        // A row whose own hash failed: decided by the row after it.
        let mut suspect: Option<AuditRecord> = None;
        loop {
            let rows = self.chain_batch(prev.id, BATCH).await?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                if let Some(s) = suspect.take() {
                    // The row after a bad one: if it checks out against the bad
                    // row's stored hash, only that row's content was changed;
                    // if it fails too, the chain was recomputed from there.
                    return Ok(Err(match self.check_row(&prev, &r) {
                        RowCheck::Ok => ChainStatus::RowAltered(s.id),
                        _ => ChainStatus::ChainRewritten(s.id),
                    }));
                }
                match self.check_row(&prev, &r) {
                    RowCheck::Ok => {}
                    RowCheck::Link if r.id != prev.id + 1 => {
                        return Ok(Err(ChainStatus::RowsMissing {
                            after: prev.id,
                            before: r.id,
                        }))
                    }
                    RowCheck::Link => return Ok(Err(ChainStatus::ChainRewritten(r.id))),
                    RowCheck::Hash => suspect = Some(r.clone()),
                }
                prev = Checkpoint {
                    id: r.id,
                    hash: r.hash.clone(),
                };
            }
        }
        if let Some(s) = suspect {
            // The last row: recomputed without the key, or edited.
            let recomputed = legacy_hash(&s.prev_hash, &s.canonical()) == s.hash;
            return Ok(Err(if recomputed {
                ChainStatus::ChainRewritten(s.id)
            } else {
                ChainStatus::RowAltered(s.id)
            }));
        }
        Ok(Ok(prev))
    }

    /// Compare the end of the verified chain with the head recorded outside.
    async fn check_head(&self, last: &Checkpoint) -> Result<ChainStatus, sqlx::Error> {
        let head = match self.recorded_head() {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Ok(ChainStatus::HeadUnchecked {
                    through: last.id,
                    why: "no head has been recorded yet".into(),
                })
            }
            Err(why) => return Ok(ChainStatus::HeadForged(why)),
        };
        if last.id < head.id {
            return Ok(ChainStatus::TailDeleted {
                last: last.id,
                head: head.id,
            });
        }
        let at_head: Option<String> = sqlx::query_scalar("SELECT hash FROM audit WHERE id = ?")
            .bind(head.id)
            .fetch_optional(self.pool())
            .await?;
        if head.id > 0 && at_head.as_deref() != Some(head.hash.as_str()) {
            return Ok(ChainStatus::ChainRewritten(head.id));
        }
        Ok(if last.id == 0 {
            ChainStatus::Empty
        } else {
            ChainStatus::VerifiedThrough(last.id)
        })
    }

    /// Check the whole table (startup, hourly, `pg-console audit verify`).
    pub async fn verify(&self) -> Result<ChainStatus, sqlx::Error> {
        let _one = self.verifying().lock().await;
        let status = if let Err(why) = self.recorded_head() {
            ChainStatus::HeadForged(why)
        } else {
            self.full_walk().await?
        };
        let mut v = self.verified_state();
        v.broken = status.is_broken().then(|| status.clone());
        v.full_at_ms = Some(crate::now_ms());
        Ok(status)
    }

    async fn full_walk(&self) -> Result<ChainStatus, sqlx::Error> {
        Ok(match self.walk(Checkpoint::genesis()).await? {
            Err(broken) => broken,
            Ok(last) => {
                let s = self.check_head(&last).await?;
                let mut v = self.verified_state();
                v.checkpoint = Some(last);
                drop(v);
                s
            }
        })
    }

    /// The chain's state for the Audit page: the rows it shows (`shown`)
    /// and the rows appended since the last check are checked now, so a
    /// load costs O(page + new rows); a break found before stays reported.
    /// While a full check runs, the last known state is reported.
    pub async fn report(&self, shown: &[AuditRecord]) -> Result<ChainReport, sqlx::Error> {
        if let Some(r) = shown.iter().find(|r| {
            !matches!(
                self.check_row(
                    &Checkpoint {
                        id: r.id - 1,
                        hash: r.prev_hash.clone()
                    },
                    r
                ),
                RowCheck::Ok
            )
        }) {
            let mut v = self.verified_state();
            if v.broken.is_none() {
                v.broken = Some(ChainStatus::RowAltered(r.id));
            }
        }
        let status = match self.verifying().try_lock() {
            Err(_) => {
                let v = self.verified_state().clone();
                v.broken.unwrap_or(ChainStatus::HeadUnchecked {
                    through: v.checkpoint.map(|c| c.id).unwrap_or(0),
                    why: "a full check of the chain is running".into(),
                })
            }
            Ok(_one) => {
                let v = self.verified_state().clone();
                match (v.broken, v.checkpoint) {
                    (Some(b), _) => b,
                    (None, None) => {
                        drop(_one);
                        self.verify().await?
                    }
                    (None, Some(cp)) => match self.walk(cp).await? {
                        Err(broken) => {
                            self.verified_state().broken = Some(broken.clone());
                            broken
                        }
                        Ok(last) => {
                            let s = self.check_head(&last).await?;
                            let mut st = self.verified_state();
                            st.checkpoint = Some(last);
                            if s.is_broken() {
                                st.broken = Some(s.clone());
                            }
                            s
                        }
                    },
                }
            }
        };
        let v = self.verified_state().clone();
        Ok(ChainReport {
            status,
            full_check_at_ms: v.full_at_ms,
            signed_head: self.signed_head(),
        })
    }
}

impl AuditLog {
    /// Check a head line an admin kept outside the console (`audit head`):
    /// it must be signed with this console's key, and its row must still be
    /// in the log with the same hash.
    pub async fn check_kept_head(&self, line: &str) -> Result<(), String> {
        let kept = self
            .key()
            .parse_signed(line)
            .ok_or("that head line is not signed with this console's key (or was edited)")?;
        let hash: Option<String> = sqlx::query_scalar("SELECT hash FROM audit WHERE id = ?")
            .bind(kept.id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| e.to_string())?;
        match hash {
            None if kept.id > 0 => Err(format!(
                "row #{} of the head you kept is gone: the log was truncated",
                kept.id
            )),
            Some(h) if h != kept.hash => Err(format!(
                "row #{} no longer has the hash of the head you kept: the chain was rewritten",
                kept.id
            )),
            _ => Ok(()),
        }
    }
}
