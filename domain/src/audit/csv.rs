//! CSV export of audit rows, written batch by batch (the export streams).

use super::AuditRecord;

/// Neutralise spreadsheet formulas (a leading `=`, `+`, `-`, `@`, TAB, CR
/// or LF makes spreadsheets evaluate or reinterpret the cell), quote everything.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn csv_header() -> &'static str {
    "id,at_ms,user,role,source_ip,session_hash,action,target,params,result,error,correlation_id,duration_ms,hash\n"
}

/// One line per row.
pub fn csv_rows(rows: &[AuditRecord]) -> String {
    let mut out = String::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        for bad in ["=1+1", "+cmd", "-2", "@SUM(A1)", "\t=1", "\r=1", "\n=1"] {
            let f = field(bad);
            assert!(f.starts_with("\"'"), "{bad:?} → {f}");
        }
        assert_eq!(field("admin"), "\"admin\"");
        assert_eq!(field("a\"b"), "\"a\"\"b\"");
    }
}
