use std::collections::HashMap;

use model::{HaproxyListener, HaproxyServer, HaproxyStats, ListenerRole};

use super::HaproxyError;

/// Parse HAProxy's stats CSV (`# pxname,svname,...` header, one row per
/// frontend, backend and server). `listen` sections appear as a FRONTEND, the
/// servers and a BACKEND row sharing one `pxname`. The stats listener itself
/// (no servers) is left out.
pub fn parse_stats_csv(text: &str, write_listener: &str, read_listener: &str) -> Result<HaproxyStats, HaproxyError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| HaproxyError::Parse("empty answer".into()))?;
    let header = header.trim_start_matches('#').trim();
    let cols: HashMap<&str, usize> = header.split(',').enumerate().map(|(i, c)| (c.trim(), i)).collect();
    for needed in ["pxname", "svname", "status"] {
        if !cols.contains_key(needed) {
            return Err(HaproxyError::Parse(format!("no `{needed}` column in the header")));
        }
    }

    let mut order: Vec<String> = Vec::new();
    let mut listeners: HashMap<String, HaproxyListener> = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let get = |name: &str| cols.get(name).and_then(|&i| f.get(i)).map(|s| s.trim()).unwrap_or("");
        let num = |name: &str| get(name).parse::<u64>().unwrap_or(0);
        let opt = |name: &str| get(name).parse::<u64>().ok();
        let px = get("pxname").to_string();
        let sv = get("svname");
        let role = if px == write_listener {
            ListenerRole::Write
        } else if px == read_listener {
            ListenerRole::Read
        } else {
            ListenerRole::Other
        };
        let entry = listeners.entry(px.clone()).or_insert_with(|| {
            order.push(px.clone());
            HaproxyListener {
                name: px.clone(),
                role,
                status: String::new(),
                sessions_current: 0,
                sessions_total: 0,
                bytes_in: 0,
                bytes_out: 0,
                servers: Vec::new(),
            }
        });
        match sv {
            "FRONTEND" => {
                entry.sessions_current = num("scur");
                entry.sessions_total = num("stot");
                entry.bytes_in = num("bin");
                entry.bytes_out = num("bout");
                if entry.status.is_empty() {
                    entry.status = get("status").to_string();
                }
            }
            "BACKEND" => entry.status = get("status").to_string(),
            _ => entry.servers.push(HaproxyServer {
                name: sv.to_string(),
                status: get("status").to_string(),
                check_status: get("check_status").to_string(),
                check_duration_ms: opt("check_duration"),
                last_check: get("last_chk").to_string(),
                sessions_current: num("scur"),
                sessions_total: num("stot"),
                bytes_in: num("bin"),
                bytes_out: num("bout"),
                last_change_secs: opt("lastchg"),
            }),
        }
    }
    let listeners = order
        .into_iter()
        .filter_map(|name| listeners.remove(&name))
        .filter(|l| !l.servers.is_empty())
        .collect();
    Ok(HaproxyStats { listeners })
}
