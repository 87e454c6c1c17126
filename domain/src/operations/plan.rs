//! Plans: what an operation will do and whether it may, from the live
//! topology. Each operation writes its own (its file, via
//! [`super::operation::Operation::plan`]); the helpers they share live here.
//! Pure: unit-tested on recorded topologies (`plan_tests.rs`).

use model::operations::{OpRequest, Precondition};
use model::topology::human_bytes;
use model::{Member, Topology};

use super::operation::{operation, scheduled, PlanCtx};
use crate::authz::UserRole;

/// The plan before it gets a token.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub title: String,
    pub steps: Vec<String>,
    pub preconditions: Vec<Precondition>,
    pub shell: String,
    pub confirm_name: String,
}

pub(super) fn pass(ok: bool, text: impl Into<String>) -> Precondition {
    Precondition {
        ok,
        text: text.into(),
        momentary: false,
    }
}

/// A failed check that usually passes within seconds (a streaming
/// replica's lag under writes), which Execute checks again before refusing.
pub(super) fn momentary_failure(text: impl Into<String>) -> Precondition {
    Precondition {
        momentary: true,
        ..pass(false, text)
    }
}

/// `patronictl` inside the first member, as the SOP runs it.
pub(super) fn patronictl(t: &Topology, args: &str) -> String {
    let node = t
        .members
        .iter()
        .find(|m| m.reachable)
        .or(t.members.first())
        .map(|m| m.name.clone())
        .unwrap_or("pg-0".into());
    format!(
        "docker exec {node} patronictl -c {} {args}",
        crate::naming::patroni_config(&node)
    )
}

/// `YYYY-MM-DDTHH:MM[:SS]` (UTC) → Patroni's ISO 8601 with zone; Err when malformed or past.
pub fn patroni_time(at: &str, now_ms: i64) -> Result<String, String> {
    let malformed = || format!("{at:?} is not a date and time (YYYY-MM-DDTHH:MM[:SS], UTC)");
    let ms = crate::datetime::parse_user_utc(at).ok_or_else(malformed)?;
    if ms <= now_ms {
        return Err(format!("{} UTC is in the past", at.trim()));
    }
    crate::datetime::patroni_schedule(ms).ok_or_else(malformed)
}

/// The caught-up replica with the least lag.
pub fn best_replica(t: &Topology) -> Option<String> {
    t.members
        .iter()
        .filter(|m| m.role.is_replica() && m.caught_up())
        .min_by_key(|m| m.lag_bytes)
        .map(|m| m.name.clone())
}

pub(super) fn member<'a>(t: &'a Topology, name: &str) -> Option<&'a Member> {
    t.members.iter().find(|m| m.name == name)
}

/// `name` is a member and answers its REST API.
pub(super) fn member_reachable(t: &Topology, name: &str, out: &mut Vec<Precondition>) {
    out.push(match member(t, name) {
        Some(x) if x.reachable => pass(true, format!("{name} answers")),
        Some(_) => pass(false, format!("{name} does not answer its REST API")),
        None => pass(false, format!("{name} is not a member of {}", t.cluster)),
    });
}

/// A candidate for leadership: a replica that answers, streams (or, with no
/// leader, runs), lags no more than `max_lag` (Patroni's
/// `maximum_lag_on_failover`) and may fail over.
pub(super) fn candidate_checks(t: &Topology, name: &str, max_lag: Option<u64>, out: &mut Vec<Precondition>) {
    let Some(m) = member(t, name) else {
        out.push(pass(false, format!("{name} is not a member of {}", t.cluster)));
        return;
    };
    out.push(pass(
        !m.role.is_leader(),
        if m.role.is_leader() {
            format!("{name} is the leader already: choose a replica")
        } else {
            format!("{name} is a replica")
        },
    ));
    out.push(pass(
        m.reachable,
        if m.reachable {
            format!("{name} answers")
        } else {
            format!("{name} does not answer its REST API")
        },
    ));
    // With a leader, a candidate must stream from it; without one (a
    // failover after the leader died) there is nothing to stream from, and
    // a running PostgreSQL is what Patroni can promote.
    let (ok, why) = if t.leader().is_some() {
        (m.streams(), "")
    } else {
        (m.runs(), " (there is no leader to stream from)")
    };
    out.push(pass(ok, format!("{name} is {}{why}", m.state)));
    match (m.lag_bytes, max_lag) {
        (None, _) => out.push(pass(false, format!("{name}'s replication lag is unknown"))),
        (Some(l), Some(max)) if l > max => out.push(momentary_failure(format!(
            "{name} lags {}; maximum_lag_on_failover is {}, so Patroni would refuse it",
            human_bytes(l),
            human_bytes(max)
        ))),
        (Some(l), _) => out.push(pass(true, format!("{name} lags {}", human_bytes(l)))),
    }
    if m.tags.get("nofailover").map(|v| v == "true").unwrap_or(false) {
        out.push(pass(false, format!("{name} is tagged nofailover")));
    }
}

/// Evaluate `req` for a caller with `role` against `t`: the schedule is
/// checked for every kind, then the operation of the request's kind plans.
pub fn draft(req: &OpRequest, t: &Topology, max_lag: Option<u64>, role: UserRole, now_ms: i64) -> Draft {
    let ctx = PlanCtx {
        topology: t,
        max_lag,
        role,
        now_ms,
    };
    let mut d = operation(req.kind()).plan(req, &ctx);
    if let Some(Err(e)) = scheduled(req, now_ms) {
        d.preconditions.insert(0, pass(false, e));
    }
    d
}
