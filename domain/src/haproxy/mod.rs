//! HAProxy statistics: parse the CSV of the stats page (`/;csv`) and fetch it.

mod csv;

pub use self::csv::parse_stats_csv;

use std::time::Duration;

use model::HaproxyStats;

#[derive(Debug, thiserror::Error)]
pub enum HaproxyError {
    #[error("HAProxy stats page {url} did not answer: {reason}; check that pg-router is running")]
    Unreachable { url: String, reason: String },
    #[error("HAProxy stats page {url} answered HTTP {status}; check the stats URL in the configuration")]
    Status { url: String, status: u16 },
    #[error("HAProxy stats CSV could not be parsed: {0}")]
    Parse(String),
}

/// Reads pg-router's stats CSV. The listener names say which is the write and
/// which the read endpoint.
pub struct HaproxyClient {
    csv_url: String,
    write_listener: String,
    read_listener: String,
    http: reqwest::Client,
}

impl HaproxyClient {
    pub fn new(csv_url: &str, write_listener: &str, read_listener: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("reqwest client with timeouts builds");
        Self {
            csv_url: csv_url.to_string(),
            write_listener: write_listener.to_string(),
            read_listener: read_listener.to_string(),
            http,
        }
    }

    pub async fn stats(&self) -> Result<HaproxyStats, HaproxyError> {
        let url = self.csv_url.clone();
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| HaproxyError::Unreachable {
                url: url.clone(),
                reason: crate::patroni::describe(&e),
            })?;
        if !resp.status().is_success() {
            return Err(HaproxyError::Status {
                url,
                status: resp.status().as_u16(),
            });
        }
        let text = resp.text().await.map_err(|e| HaproxyError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        parse_stats_csv(&text, &self.write_listener, &self.read_listener)
    }
}
