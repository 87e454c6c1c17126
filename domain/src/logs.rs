//! Containers' logs from Docker (`docker logs`, with timestamps): a live
//! tail and time ranges. Every line goes through a [`Masker`] first, so the
//! stack's secrets never leave the server.

use futures::{Stream, StreamExt};
use model::logs::{LogLine, MASK};

use crate::docker::{DockerControl, DockerError};

/// Replaces every occurrence of known secret values in a line.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

/// Values shorter than this are not treated as secrets (masking "postgres"
/// or "1" everywhere would hide the log, not protect it).
pub const MIN_SECRET_LEN: usize = 8;

impl Masker {
    pub fn new<I, S>(values: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut secrets: Vec<String> = values
            .into_iter()
            .map(|v| v.as_ref().to_string())
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Masker { secrets }
    }

    pub fn mask(&self, line: &str) -> String {
        let mut out = line.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

/// One line as Docker writes it with timestamps
/// (`2026-11-30T09:52:52.177176902Z text`), masked.
pub fn parse_line(raw: &str, stderr: bool, masker: &Masker) -> LogLine {
    let (at_ms, text) = match raw.split_once(' ') {
        Some((t, rest)) => match crate::datetime::parse_rfc3339_ms(t) {
            Some(ms) => (ms, rest),
            None => (0, raw),
        },
        None => (crate::datetime::parse_rfc3339_ms(raw).unwrap_or(0), ""),
    };
    LogLine {
        at_ms,
        stderr,
        text: masker.mask(text.trim_end_matches(['\r', '\n'])),
    }
}

/// What to read: from `since_s` (unix seconds), up to `until_s` (0: now),
/// the last `tail` lines of that only (None: all), then new lines as
/// they come when `follow`.
#[derive(Clone, Debug)]
pub struct LogQuery {
    pub since_s: i64,
    pub until_s: i64,
    pub tail: Option<u32>,
    pub follow: bool,
}

/// The container's log lines, masked.
pub fn lines(
    docker: &DockerControl,
    container: &str,
    q: &LogQuery,
    masker: Masker,
) -> impl Stream<Item = Result<Vec<LogLine>, DockerError>> + Send + 'static {
    docker.logs(container, q).map(move |frame| {
        frame.map(|(bytes, stderr)| {
            String::from_utf8_lossy(&bytes)
                .split('\n')
                .filter(|l| !l.is_empty())
                .map(|l| parse_line(l, stderr, &masker))
                .collect()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_longest_first_and_short_values_are_not_secrets() {
        let m = Masker::new(["s3cret-password", "s3cret-password-and-more", "short", ""]);
        assert_eq!(
            m.mask("a s3cret-password-and-more b s3cret-password c short"),
            format!("a {MASK} b {MASK} c short")
        );
        assert_eq!(Masker::default().mask("as is"), "as is");
    }

    #[test]
    fn docker_timestamps_are_read_and_the_rest_masked() {
        let m = Masker::new(["hunter2hunter2"]);
        let l = parse_line("2026-11-30T09:52:52.177176902Z login with hunter2hunter2\r", true, &m);
        assert_eq!(l.at_ms, 1_796_032_372_177);
        assert!(l.stderr);
        assert_eq!(l.text, format!("login with {MASK}"));
        let odd = parse_line("no timestamp here", false, &m);
        assert_eq!((odd.at_ms, odd.text.as_str()), (0, "no timestamp here"));
    }
}
