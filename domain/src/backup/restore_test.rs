//! Test restore: extract an archive into a scratch directory, start an
//! isolated PostgreSQL on it (a throwaway container from the nodes' image,
//! as a read-only standby with replication, WAL restore and archiving
//! switched off), check the system identifier, read every table of every
//! database, shut it down and record the result in the manifest.
//!
//! Nothing else on the machine can reach that PostgreSQL: its container has
//! no network at all (`--network none`, so no TCP port anywhere), and it
//! listens only on a Unix socket in a directory of the scratch folder that
//! is private to the postgres user (mode 700), which the console (root, or
//! the same uid) reaches through the bind mount.

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
        let mount = std::fs::canonicalize(&scratch).map_err(|e| e.to_string())?;
        let socket_dir = mount.join(SOCKET_DIR);
        if socket_dir.join(".s.PGSQL.5432").as_os_str().len() > MAX_SOCKET_PATH {
            return Err(format!(
                "the backups directory's path is too long for a Unix socket ({}): use a shorter backups_dir",
                socket_dir.display()
            ));
        }
        docker
            .run_scratch(
                CONTAINER,
                &image,
                &[format!("{}:/restore", mount.display())],
                vec!["/bin/sh".into(), "-c".into(), start_command(&top)],
            )
            .await
            .map_err(|e| e.to_string())?;
        let client = connect_when_ready(docker, &socket_dir, "postgres").await?;
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
        drop(client);
        let dbs = databases(&socket_dir).await?;
        for db in dbs {
            read_every_table(&db, &socket_dir, check).await?;
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
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&scratch)).await;
    result.map_err(|e| {
        if logs.trim().is_empty() {
            e
        } else {
            format!("{e}; the scratch PostgreSQL said: {}", logs.trim())
        }
    })
}

/// The private socket directory, inside the scratch folder.
const SOCKET_DIR: &str = "s";
/// Unix socket paths are limited to 107 bytes.
const MAX_SOCKET_PATH: usize = 100;

/// Extract, and allow connections only on the private Unix socket (the
/// container has no network, so there is no TCP to allow).
fn prepare_scratch(archive_path: &Path, into: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into)?;
    std::fs::set_permissions(into, std::fs::Permissions::from_mode(0o700))?;
    archive::extract(archive_path, into)?;
    let sock = into.join(SOCKET_DIR);
    std::fs::create_dir_all(&sock)?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(into.join("restore_test_hba.conf"), "local all all trust\n")
}

/// The archive's data directory, relative to the scratch folder: the
/// folder holding `PG_VERSION` (the scratch folder also holds the private
/// socket directory, which has none).
fn top_folder(scratch: &Path) -> Result<String, String> {
    let top = archive::find_data_dir(scratch)
        .and_then(|p| p.strip_prefix(scratch).ok().map(|r| r.to_string_lossy().to_string()))
        .ok_or_else(|| "the archive holds no data directory".to_string())?;
    // It goes into a shell command line: plain path characters only.
    if !top.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c)) {
        return Err(format!(
            "the archive's data directory {top:?} has characters other than letters, digits and ._/-"
        ));
    }
    Ok(top)
}

/// A read-only standby that replicates from nobody, restores no WAL,
/// archives nothing and listens only on the private socket.
fn start_command(top: &str) -> String {
    let opts = [
        "listen_addresses=''".to_string(),
        "port=5432".into(),
        format!("unix_socket_directories=/restore/{SOCKET_DIR}"),
        "unix_socket_permissions=0700".into(),
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
         && chmod 700 /restore /restore/{SOCKET_DIR} \
         && exec su postgres -s /bin/sh -c \"exec {PG_BIN}/postgres -D /restore/{top} {opts}\""
    )
}

fn config(socket_dir: &Path, db: &str) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(socket_dir)
        .port(5432)
        .user("postgres")
        .dbname(db)
        .connect_timeout(Duration::from_secs(2))
        .application_name("pg-console-restore-test");
    cfg
}

pub(crate) async fn connect(socket_dir: &Path, db: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = config(socket_dir, db)
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(client)
}

async fn connect_when_ready(
    docker: &DockerControl,
    socket_dir: &Path,
    db: &str,
) -> Result<tokio_postgres::Client, String> {
    let t0 = Instant::now();
    loop {
        match connect(socket_dir, db).await {
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

/// The databases that take connections.
pub(crate) async fn databases(socket_dir: &Path) -> Result<Vec<String>, String> {
    let client = connect(socket_dir, "postgres").await?;
    Ok(client
        .query("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1", &[])
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// `SELECT count(*)` of every table and materialized view: every heap page
/// is read (and its checksum checked).
pub(crate) async fn read_every_table(db: &str, socket_dir: &Path, check: &mut RestoreTest) -> Result<(), String> {
    let client = connect(socket_dir, db).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_is_found_beside_the_socket_directory() {
        let root = std::env::temp_dir().join(format!("pgc-top-{}-{}", std::process::id(), crate::now_ms()));
        // Whatever order read_dir returns them in, the socket directory is never taken.
        for name in ["a", SOCKET_DIR, "z"] {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        std::fs::create_dir_all(root.join("pg2-data")).unwrap();
        std::fs::write(root.join("pg2-data/PG_VERSION"), "15\n").unwrap();
        std::fs::write(root.join("restore_test_hba.conf"), "").unwrap();
        assert_eq!(top_folder(&root).unwrap(), "pg2-data");
        std::fs::remove_dir_all(root.join("pg2-data")).unwrap();
        assert!(top_folder(&root).is_err());
        let _ = std::fs::remove_dir_all(root);
    }
}
