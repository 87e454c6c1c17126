//! Patroni's JSON as it comes over the wire, tolerant of 3.x and 4.x.
//! Fields differ between generations: 3.0 reports replicas as `running` with
//! one `lag`, 4.x as `streaming` with `receive_lag` / `replay_lag` / `lag`;
//! any lag may be the string `"unknown"`.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// `GET /cluster`
#[derive(Clone, Debug, Deserialize)]
pub struct ClusterResponse {
    #[serde(default)]
    pub members: Vec<ClusterMember>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub pause: Option<bool>,
    #[serde(default)]
    pub scheduled_switchover: Option<ScheduledSwitchoverWire>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ScheduledSwitchoverWire {
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ClusterMember {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub timeline: Option<u64>,
    #[serde(default)]
    pub lag: Option<Value>,
    #[serde(default)]
    pub receive_lag: Option<Value>,
    #[serde(default)]
    pub replay_lag: Option<Value>,
    #[serde(default)]
    pub pending_restart: Option<bool>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, Value>>,
}

impl ClusterMember {
    pub fn lag_bytes(&self) -> Option<u64> {
        lag_value(self.lag.as_ref())
            .or_else(|| lag_value(self.replay_lag.as_ref()))
            .or_else(|| lag_value(self.receive_lag.as_ref()))
    }
}

/// A lag is a byte count, or `"unknown"` (or absent).
pub fn lag_value(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `GET /patroni` (a member describing itself).
#[derive(Clone, Debug, Deserialize)]
pub struct MemberStatus {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub server_version: Option<u64>,
    #[serde(default)]
    pub timeline: Option<u64>,
    #[serde(default)]
    pub pending_restart: Option<bool>,
    #[serde(default)]
    pub pause: Option<bool>,
    #[serde(default)]
    pub replication_state: Option<String>,
    #[serde(default)]
    pub database_system_identifier: Option<String>,
    #[serde(default)]
    pub patroni: Option<PatroniInfo>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PatroniInfo {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /history`: `[[timeline, lsn, reason, timestamp, new_leader], ...]`
/// (older versions omit the last one or two fields).
pub fn parse_history(v: &Value) -> Vec<model::HistoryEntry> {
    let Some(rows) = v.as_array() else { return Vec::new() };
    rows.iter()
        .filter_map(|row| {
            let r = row.as_array()?;
            Some(model::HistoryEntry {
                timeline: r.first()?.as_u64()?,
                lsn: r.get(1).and_then(|x| x.as_u64()).unwrap_or(0),
                reason: r.get(2).and_then(|x| x.as_str()).unwrap_or("").to_string(),
                timestamp: r.get(3).and_then(|x| x.as_str()).map(str::to_string),
                at_ms: r
                    .get(3)
                    .and_then(|x| x.as_str())
                    .and_then(crate::datetime::parse_rfc3339_ms),
                new_leader: r.get(4).and_then(|x| x.as_str()).map(str::to_string),
            })
        })
        .collect()
}

/// Render a tag value for display (`true`, `5`, `"x"` → `x`).
pub fn tag_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
