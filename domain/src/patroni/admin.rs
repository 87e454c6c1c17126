//! Patroni's unsafe REST methods (switchover, failover, restart, reload,
//! reinitialize, pause/resume), authenticated with the stack's REST API
//! credentials. Patroni refuses with a reason; it is passed on verbatim.

use std::time::Duration;

use serde_json::{json, Value};

use super::client::describe;
use super::MemberEndpoint;

#[derive(Debug, thiserror::Error)]
pub enum PatroniOpError {
    #[error("{member} does not answer: {reason}")]
    Unreachable { member: String, reason: String },
    #[error("Patroni refused (HTTP {status}): {body}")]
    Refused { status: u16, body: String },
    #[error("unknown member {0:?}")]
    UnknownMember(String),
}

impl PatroniOpError {
    /// Patroni accepted a switchover or failover but did not see its outcome
    /// within its own wait (`max(10, loop_wait)` × 2 polls of the DCS): it
    /// answers 503 "Failover status unknown". The change may still happen,
    /// e.g. once a stopped leader's lock expires (its TTL outlasts that wait).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Refused { status: 503, body } if body.ends_with(" status unknown"))
    }
}

/// Credentials for Patroni's unsafe methods.
#[derive(Clone)]
pub struct ApiCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ApiCredentials {{ username: {:?}, password: <redacted> }}",
            self.username
        )
    }
}

pub struct PatroniAdmin {
    members: Vec<MemberEndpoint>,
    credentials: Option<ApiCredentials>,
    http: reqwest::Client,
}

impl PatroniAdmin {
    /// `timeout` bounds each call; a switchover can take as long as Patroni's
    /// own wait (tens of seconds).
    pub fn new(members: Vec<MemberEndpoint>, credentials: Option<ApiCredentials>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .expect("reqwest client with timeouts builds");
        Self {
            members,
            credentials,
            http,
        }
    }

    fn base(&self, member: &str) -> Result<&str, PatroniOpError> {
        self.members
            .iter()
            .find(|m| m.name == member)
            .map(|m| m.api_url.trim_end_matches('/'))
            .ok_or_else(|| PatroniOpError::UnknownMember(member.to_string()))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        member: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, PatroniOpError> {
        let url = format!("{}{path}", self.base(member)?);
        let mut req = self.http.request(method, &url);
        if let Some(c) = &self.credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| PatroniOpError::Unreachable {
            member: member.to_string(),
            reason: describe(&e),
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(text.trim().to_string())
        } else {
            Err(PatroniOpError::Refused {
                status: status.as_u16(),
                body: text.trim().to_string(),
            })
        }
    }

    /// Switch the leader to `candidate`, now or at `scheduled_at` (ISO 8601 with zone).
    pub async fn switchover(
        &self,
        via: &str,
        leader: &str,
        candidate: &str,
        scheduled_at: Option<&str>,
    ) -> Result<String, PatroniOpError> {
        let mut body = json!({ "leader": leader, "candidate": candidate });
        if let Some(at) = scheduled_at {
            body["scheduled_at"] = json!(at);
        }
        self.send(reqwest::Method::POST, via, "/switchover", Some(body)).await
    }

    pub async fn cancel_scheduled_switchover(&self, via: &str) -> Result<String, PatroniOpError> {
        self.send(reqwest::Method::DELETE, via, "/switchover", None).await
    }

    pub async fn failover(&self, via: &str, candidate: &str) -> Result<String, PatroniOpError> {
        self.send(
            reqwest::Method::POST,
            via,
            "/failover",
            Some(json!({ "candidate": candidate })),
        )
        .await
    }

    pub async fn restart(
        &self,
        member: &str,
        only_if_pending: bool,
        schedule: Option<&str>,
    ) -> Result<String, PatroniOpError> {
        let mut body = json!({});
        if only_if_pending {
            body["restart_pending"] = json!(true);
        }
        if let Some(at) = schedule {
            body["schedule"] = json!(at);
        }
        self.send(reqwest::Method::POST, member, "/restart", Some(body)).await
    }

    pub async fn reload(&self, member: &str) -> Result<String, PatroniOpError> {
        self.send(reqwest::Method::POST, member, "/reload", None).await
    }

    pub async fn reinitialize(&self, member: &str) -> Result<String, PatroniOpError> {
        self.send(
            reqwest::Method::POST,
            member,
            "/reinitialize",
            Some(json!({ "force": true })),
        )
        .await
    }

    pub async fn set_pause(&self, via: &str, pause: bool) -> Result<String, PatroniOpError> {
        self.send(reqwest::Method::PATCH, via, "/config", Some(json!({ "pause": pause })))
            .await
    }

    /// The DCS configuration (`GET /config`), e.g. `maximum_lag_on_failover`.
    pub async fn dcs_config(&self, via: &str) -> Result<Value, PatroniOpError> {
        let text = self.send(reqwest::Method::GET, via, "/config", None).await?;
        serde_json::from_str(&text).map_err(|e| PatroniOpError::Refused {
            status: 200,
            body: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PatroniOpError;

    fn refused(status: u16, body: &str) -> PatroniOpError {
        PatroniOpError::Refused {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn only_an_unseen_outcome_is_unknown() {
        // Patroni 4.1.5's answers (api.py, poll_failover_result and its callers).
        assert!(refused(503, "Failover status unknown").outcome_unknown());
        assert!(refused(503, "Switchover status unknown").outcome_unknown());
        assert!(!refused(503, "Failover failed").outcome_unknown());
        assert!(!refused(412, "candidate name does not match with sync_standby").outcome_unknown());
        assert!(!refused(500, "Failover status unknown").outcome_unknown());
    }
}
