//! Containers' logs as the console sends them: lines with their time, and
//! what a live tail says besides lines.

use serde::{Deserialize, Serialize};

/// One line of a container's log, secrets already masked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// When Docker received it (unix ms).
    pub at_ms: i64,
    pub stderr: bool,
    pub text: String,
}

/// One message of the live tail `/ws/logs/{container}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogMessage {
    /// Lines in the order written.
    Lines(Vec<LogLine>),
    /// This many lines were dropped because the browser did not keep up.
    Missed(u64),
    /// The tail ended (the container went away, the session ended, …).
    Error(String),
}

/// What replaces a secret in a log line.
pub const MASK: &str = "••••••";
