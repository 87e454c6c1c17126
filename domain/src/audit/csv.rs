use super::AuditRecord;

fn field(s: &str) -> String {
    // Neutralise spreadsheet formulas, quote everything.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// CSV export of audit rows (header + one line each).
pub fn to_csv(rows: &[AuditRecord]) -> String {
    let mut out = String::from(
        "id,at_ms,user,role,source_ip,session_hash,action,target,params,result,error,correlation_id,duration_ms,hash\n",
    );
    for r in rows {
        let cols = [
            r.id.to_string(),
            r.at_ms.to_string(),
            r.user_name.clone(),
            r.role.clone(),
            r.source_ip.clone(),
            r.session_hash.clone(),
            r.action.clone(),
            r.target.clone(),
            r.params.clone(),
            r.result.clone(),
            r.error.clone(),
            r.correlation_id.clone(),
            r.duration_ms.to_string(),
            r.hash.clone(),
        ];
        out.push_str(&cols.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}
