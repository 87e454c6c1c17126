use std::collections::HashMap;

use model::{HaproxyListener, HaproxyServer, HaproxyStats, ListenerRole};

use super::HaproxyError;

/// One row of the stats CSV, read by column name (HAProxy appends columns
/// across releases; the order is not relied on).
struct Row<'a> {
    cols: &'a HashMap<String, usize>,
    rec: csv::StringRecord,
}

impl Row<'_> {
    fn get(&self, name: &str) -> &str {
        self.cols.get(name).and_then(|&i| self.rec.get(i)).unwrap_or("")
    }
    fn num(&self, name: &str) -> u64 {
        self.get(name).parse().unwrap_or(0)
    }
    fn opt(&self, name: &str) -> Option<u64> {
        self.get(name).parse().ok()
    }
}

/// Parse HAProxy's stats CSV (`# pxname,svname,...` header, one row per
/// frontend, backend and server) with the `csv` crate: quoted fields,
/// empty fields and any column order. `listen` sections appear as a
/// FRONTEND, the servers and a BACKEND row sharing one `pxname`. The stats
/// listener itself (no servers) is left out.
pub fn parse_stats_csv(text: &str, write_listener: &str, read_listener: &str) -> Result<HaproxyStats, HaproxyError> {
    // HAProxy writes the header as a comment: "# pxname,svname,...".
    let body = text.trim_start();
    let body = body.strip_prefix('#').unwrap_or(body).trim_start_matches(' ');
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| HaproxyError::Parse(format!("unreadable header: {e}")))?;
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(HaproxyError::Parse("empty answer".into()));
    }
    let cols: HashMap<String, usize> = headers.iter().enumerate().map(|(i, c)| (c.to_string(), i)).collect();
    for needed in ["pxname", "svname", "status"] {
        if !cols.contains_key(needed) {
            return Err(HaproxyError::Parse(format!("no `{needed}` column in the header")));
        }
    }
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| HaproxyError::Parse(format!("unreadable row: {e}")))?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        rows.push(Row { cols: &cols, rec });
    }
    Ok(group(rows, write_listener, read_listener))
}

/// Rows into listeners (in the order HAProxy lists them), each with its servers.
fn group(rows: Vec<Row<'_>>, write_listener: &str, read_listener: &str) -> HaproxyStats {
    let mut order: Vec<String> = Vec::new();
    let mut listeners: HashMap<String, HaproxyListener> = HashMap::new();
    for row in &rows {
        let px = row.get("pxname").to_string();
        let sv = row.get("svname");
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
                entry.sessions_current = row.num("scur");
                entry.sessions_total = row.num("stot");
                entry.bytes_in = row.num("bin");
                entry.bytes_out = row.num("bout");
                if entry.status.is_empty() {
                    entry.status = row.get("status").to_string();
                }
            }
            "BACKEND" => entry.status = row.get("status").to_string(),
            _ => entry.servers.push(HaproxyServer {
                name: sv.to_string(),
                status: row.get("status").to_string(),
                check_status: row.get("check_status").to_string(),
                check_duration_ms: row.opt("check_duration"),
                last_check: row.get("last_chk").to_string(),
                sessions_current: row.num("scur"),
                sessions_total: row.num("stot"),
                bytes_in: row.num("bin"),
                bytes_out: row.num("bout"),
                last_change_secs: row.opt("lastchg"),
            }),
        }
    }
    let listeners = order
        .into_iter()
        .filter_map(|name| listeners.remove(&name))
        .filter(|l| !l.servers.is_empty())
        .collect();
    HaproxyStats { listeners }
}
