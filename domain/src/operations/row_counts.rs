//! After a restore: does the new leader hold what the backup's test restore
//! read? `database.schema.table` → `SELECT count(*)` through the write endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use super::write_probe::ProbeTarget;

/// `database.schema.table` split at the first dot (database names with a dot
/// are read as far as that dot).
fn split(qualified: &str) -> Option<(&str, &str)> {
    qualified.split_once('.')
}

/// The tables whose count differs (or that cannot be read), in words.
pub async fn compare(target: &ProbeTarget, expected: &[(String, u64)]) -> Result<Vec<String>, String> {
    let mut by_db: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for (q, n) in expected {
        if let Some((db, table)) = split(q) {
            by_db.entry(db).or_default().push((table, *n));
        }
    }
    let mut out = Vec::new();
    for (db, tables) in by_db {
        let mut t = target.clone();
        t.dbname = db.to_string();
        let cfg = t.config(&t.host, t.port, Duration::from_secs(5), "pg-console-restore-check");
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect to database {db} through the write endpoint: {e}"))?;
        let task = tokio::spawn(conn);
        for (table, want) in tables {
            // The name is as format('%I.%I') quoted it when the test restore listed it.
            match client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await {
                Ok(row) => {
                    let got = row.get::<_, i64>(0) as u64;
                    if got != want {
                        out.push(format!("{db}.{table} has {got} rows, the backup {want}"));
                    }
                }
                Err(e) => out.push(format!("{db}.{table} cannot be read: {e}")),
            }
        }
        drop(client);
        let _ = task.await;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_split_at_the_database() {
        assert_eq!(
            super::split("postgres.public.pgbench_accounts"),
            Some(("postgres", "public.pgbench_accounts"))
        );
        assert_eq!(super::split("app.\"my.schema\".t"), Some(("app", "\"my.schema\".t")));
    }
}
