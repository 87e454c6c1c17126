//! Test restore: extract an archive into a scratch directory, start an
//! isolated PostgreSQL on it (a throwaway container from the nodes' image,
//! loopback only, as a read-only standby with replication, WAL restore and
//! archiving switched off), check the system identifier, read every table of
//! every database, shut it down and record the result in the manifest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{archive, BackupSettings, Manifest};
use crate::docker::DockerControl;

/// The scratch container's name (one test restore at a time).
pub const CONTAINER: &str = "pg-console-restore-test";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// What a test restore found (kept in the manifest, shown as is).
pub use model::backups::RestoreTest;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Check the sha256, then test-restore. The manifest is updated either way;
/// Err only when there is nothing to check (unknown or failed backup).
pub async fn verify_and_restore(
    s: &BackupSettings,
    docker: &DockerControl,
    image_from: &str,
    id: &str,
) -> Result<Manifest, String> {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, id2) = (s.backups_dir.clone(), id.to_string());
    let m = tokio::task::spawn_blocking(move || super::verify(&dir, &id2))
        .await
        .map_err(|e| e.to_string())??;
    let t0 = Instant::now();
    let mut check = RestoreTest {
        at_ms: crate::now_ms(),
        ..Default::default()
    };
    let outcome = if m.verified_ok != Some(true) {
        Err("sha256 mismatch: the archive is corrupted, not restored".to_string())
    } else {
        restore_and_read(s, docker, image_from, &m, &mut check).await
    };
    check.duration_ms = t0.elapsed().as_millis() as u64;
    match outcome {
        Ok(()) => check.ok = true,
        Err(e) => check.error = e,
    }
    super::update(&s.backups_dir, id, |m| m.restore_test = Some(check))
        .map_err(|e| format!("cannot write the manifest: {e}"))
}

fn scratch_dir(s: &BackupSettings, id: &str) -> PathBuf {
    s.backups_dir.join(".restore").join(id)
}

async fn restore_and_read(
    s: &BackupSettings,
    docker: &DockerControl,
    image_from: &str,
    m: &Manifest,
    check: &mut RestoreTest,
) -> Result<(), String> {
    let scratch = scratch_dir(s, &m.id);
    let result = async {
        let image = docker.image_of(image_from).await.map_err(|e| e.to_string())?;
        let (arch, into) = (s.backups_dir.join(m.archive_name()), scratch.clone());
        tokio::task::spawn_blocking(move || prepare_scratch(&arch, &into))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot extract the archive: {e}"))?;
        let top = top_folder(&scratch)?;
        let port = s.restore_test_port;
        let mount = std::fs::canonicalize(&scratch).map_err(|e| e.to_string())?;
        docker
            .run_scratch(
                CONTAINER,
                &image,
                &format!("{}:/restore", mount.display()),
                vec!["/bin/sh".into(), "-c".into(), start_command(&top, port)],
            )
            .await
            .map_err(|e| e.to_string())?;
        let client = connect_when_ready(docker, port, "postgres").await?;
        let sysid: i64 = client
            .query_one("SELECT system_identifier FROM pg_control_system()", &[])
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        check.system_identifier = sysid.to_string();
        if check.system_identifier != m.system_identifier {
            return Err(format!(
                "the restored copy has system identifier {sysid}, the manifest says {}",
                m.system_identifier
            ));
        }
        let dbs: Vec<String> = client
            .query("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1", &[])
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        drop(client);
        for db in dbs {
            read_every_table(&db, port, check).await?;
            check.databases += 1;
        }
        Ok(())
    }
    .await;
    let logs = if result.is_err() {
        docker.tail_logs(CONTAINER, 15).await
    } else {
        String::new()
    };
    let _ = docker.remove(CONTAINER).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result.map_err(|e| {
        if logs.trim().is_empty() {
            e
        } else {
            format!("{e}; the scratch PostgreSQL said: {}", logs.trim())
        }
    })
}

/// Extract, and let only loopback in without a password (nothing else listens).
fn prepare_scratch(archive_path: &Path, into: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into)?;
    archive::extract(archive_path, into)?;
    std::fs::write(
        into.join("restore_test_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    )
}

fn top_folder(scratch: &Path) -> Result<String, String> {
    std::fs::read_dir(scratch)
        .map_err(|e| e.to_string())?
        .flatten()
        .find(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .ok_or_else(|| "the archive holds no data directory".to_string())
}

/// A read-only standby that replicates from nobody, restores no WAL,
/// archives nothing and listens on loopback only.
fn start_command(top: &str, port: u16) -> String {
    let opts = [
        "listen_addresses=127.0.0.1".to_string(),
        format!("port={port}"),
        "unix_socket_directories=/tmp".into(),
        "hba_file=/restore/restore_test_hba.conf".into(),
        format!("ident_file=/restore/{top}/pg_ident.conf"),
        "primary_conninfo=".into(),
        "primary_slot_name=".into(),
        "restore_command=".into(),
        "archive_mode=off".into(),
        "hot_standby=on".into(),
        "shared_buffers=64MB".into(),
        "cluster_name=pg-console-restore-test".into(),
    ]
    .iter()
    .map(|o| format!("-c {o}"))
    .collect::<Vec<_>>()
    .join(" ");
    format!(
        "chown -R postgres:postgres /restore && chmod 700 /restore/{top} && touch /restore/{top}/standby.signal \
         && exec su postgres -s /bin/sh -c 'exec {PG_BIN}/postgres -D /restore/{top} {opts}'"
    )
}

fn config(port: u16, db: &str) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname(db)
        .connect_timeout(Duration::from_secs(2))
        .application_name("pg-console-restore-test");
    cfg
}

async fn connect(port: u16, db: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = config(port, db)
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(client)
}

async fn connect_when_ready(docker: &DockerControl, port: u16, db: &str) -> Result<tokio_postgres::Client, String> {
    let t0 = Instant::now();
    loop {
        match connect(port, db).await {
            Ok(c) => return Ok(c),
            Err(e) if t0.elapsed() > Duration::from_secs(120) => {
                return Err(format!(
                    "the restored copy did not accept connections within 120 s: {e}"
                ))
            }
            Err(_) => {}
        }
        if !docker.is_running(CONTAINER).await.unwrap_or(false) {
            return Err("the restored copy's PostgreSQL exited instead of starting".into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `SELECT count(*)` of every table and materialized view: every heap page
/// is read (and its checksum checked).
async fn read_every_table(db: &str, port: u16, check: &mut RestoreTest) -> Result<(), String> {
    let client = connect(port, db).await?;
    let tables = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'm') AND n.nspname <> 'information_schema' \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| format!("{db}: cannot list tables: {e}"))?;
    for t in tables {
        let name: String = t.get(0);
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await
            .map_err(|e| format!("cannot read {db}.{name}: {e}"))?
            .get(0);
        check.tables += 1;
        check.rows += n as u64;
        if !name.starts_with("pg_catalog.") {
            check.table_rows.push((format!("{db}.{name}"), n as u64));
        }
    }
    Ok(())
}
