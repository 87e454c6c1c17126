//! Docker's events of the stack's containers as timeline events: what
//! `docker events` shows (die, start, stop, kill, OOM, restart, pause,
//! health), at Docker's own time, each linked to that minute of the
//! container's log.

use std::collections::HashMap;

use model::timeline::EventKind;

use super::store::NewEvent;

/// The container actions the timeline keeps (Docker's event names; health
/// changes arrive as `health_status: healthy` and the like).
pub const ACTIONS: &[&str] = &["die", "start", "stop", "kill", "oom", "restart", "pause", "unpause"];

/// One Docker event as a timeline event, or None for actions the timeline
/// does not keep (exec, attach, top...).
pub fn container_event(
    action: &str,
    id: &str,
    attributes: &HashMap<String, String>,
    time_nano: i64,
) -> Option<NewEvent> {
    let name = attributes.get("name")?.as_str();
    let attr = |k: &str| attributes.get(k).map(String::as_str).unwrap_or("?");
    let text = match action {
        "die" => format!("{name} died (exit code {})", attr("exitCode")),
        "start" => format!("{name} started"),
        "stop" => format!("{name} stopped"),
        "kill" => format!("{name} killed (signal {})", attr("signal")),
        "oom" => format!("{name} ran out of memory (OOM kill)"),
        "restart" => format!("{name} restarted"),
        "pause" => format!("{name} paused"),
        "unpause" => format!("{name} unpaused"),
        a => match a.strip_prefix("health_status: ") {
            Some(h) => format!("{name} health: {h}"),
            None => return None,
        },
    };
    let at_ms = time_nano / 1_000_000;
    Some(NewEvent {
        at_ms,
        kind: EventKind::Container,
        subject: name.to_string(),
        text,
        link: log_minute(name, at_ms),
        key: format!("docker:{id}:{action}:{time_nano}"),
    })
}

/// The download of the container's log around `at_ms` (30 s either side).
pub fn log_minute(container: &str, at_ms: i64) -> Option<String> {
    let since = crate::datetime::format_rfc3339(at_ms - 30_000)?;
    let until = crate::datetime::format_rfc3339(at_ms + 30_000)?;
    Some(format!("/logs/{container}?since={since}&until={until}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn docker_actions_read_as_sentences_at_dockers_time() {
        let a = attrs(&[("name", "pg-1"), ("exitCode", "137"), ("image", "pgc-node")]);
        let e = container_event("die", "abc", &a, 1_764_500_000_123_456_789).unwrap();
        assert_eq!(e.text, "pg-1 died (exit code 137)");
        assert_eq!(e.at_ms, 1_764_500_000_123);
        assert_eq!(e.subject, "pg-1");
        assert_eq!(e.key, "docker:abc:die:1764500000123456789");
        let link = e.link.unwrap();
        assert!(
            link.starts_with("/logs/pg-1?since=2025-11-30T10:52:50.123Z&until="),
            "{link}"
        );
        let k = container_event("kill", "abc", &attrs(&[("name", "pg-1"), ("signal", "9")]), 0).unwrap();
        assert_eq!(k.text, "pg-1 killed (signal 9)");
        let h = container_event("health_status: unhealthy", "x", &attrs(&[("name", "etcd")]), 0).unwrap();
        assert_eq!(h.text, "etcd health: unhealthy");
        assert!(container_event("exec_start: sh", "x", &attrs(&[("name", "etcd")]), 0).is_none());
        assert!(
            container_event("die", "x", &attrs(&[]), 0).is_none(),
            "no name, not ours"
        );
    }
}
