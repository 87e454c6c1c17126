//! How the SOP names things after a member: `pg-N` runs from
//! `${DEFAULT_DATA_DIR}/pg/pgN-data`, reads `/home/postgres/postgresN.yml`,
//! and its backup is `pgN-backup.tar.gz`. The one place that rule lives.

/// The `N` of `pg-N` ("0" for a name without a number).
pub fn member_number(member: &str) -> &str {
    match member.rsplit_once('-') {
        Some((_, n)) if !n.is_empty() => n,
        _ => "0",
    }
}

/// `pgN-data`: the member's data directory under `${DEFAULT_DATA_DIR}/pg/`.
pub fn data_dir_name(member: &str) -> String {
    format!("pg{}-data", member_number(member))
}

/// `pg-N` from a data directory named `pgN-data`; None for other names.
pub fn member_of_data_dir(dir_name: &str) -> Option<String> {
    let n = dir_name.strip_prefix("pg")?.strip_suffix("-data")?;
    (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).then(|| format!("pg-{n}"))
}

/// `pgN-backup`: how the SOP names the member's backup archive.
pub fn backup_name(member: &str) -> String {
    format!("pg{}-backup", member_number(member))
}

/// Patroni's configuration file inside the member's container.
pub fn patroni_config(member: &str) -> String {
    format!("/home/postgres/postgres{}.yml", member_number(member))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sop_names() {
        assert_eq!(data_dir_name("pg-2"), "pg2-data");
        assert_eq!(backup_name("pg-10"), "pg10-backup");
        assert_eq!(patroni_config("pg-0"), "/home/postgres/postgres0.yml");
        assert_eq!(member_number("etcd"), "0");
        assert_eq!(member_of_data_dir("pg12-data").as_deref(), Some("pg-12"));
        assert_eq!(member_of_data_dir("pgx-data"), None);
        assert_eq!(member_of_data_dir("pg1-data.old"), None);
    }
}
