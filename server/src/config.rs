//! The console's configuration: one typed struct, read from defaults (which
//! run the demo stack), then a TOML file, then `PGC_*` environment variables.
//! `pg-console --help` prints every setting from the same table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the config file {path} is not valid: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?} is not valid for `{key}`: {message}")]
    Env {
        var: &'static str,
        key: &'static str,
        value: String,
        message: String,
    },
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// One documented setting, for `--help`.
pub struct SettingDoc {
    pub key: &'static str,
    pub env: &'static str,
    pub doc: &'static str,
}

macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $key:ident : $ty:ty = $default:expr, env $env:literal; )+) => {
        /// pg-console's configuration. See `pg-console --help`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $( $key: $default, )+ }
            }
        }

        pub const SETTINGS: &[SettingDoc] = &[
            $( SettingDoc { key: stringify!($key), env: $env, doc: concat!($($doc),+) }, )+
        ];

        impl Config {
            /// Overlay `PGC_*` variables from `get` (the process environment in production).
            pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
                $(
                    if let Some(value) = get($env) {
                        self.$key = parse_value::<$ty>(&value).map_err(|message| ConfigError::Env {
                            var: $env, key: stringify!($key), value: value.clone(), message,
                        })?;
                    }
                )+
                Ok(())
            }
        }
    };
}

settings! {
    /// Address and port the console listens on.
    listen: SocketAddr = "127.0.0.1:18080".parse().unwrap(), env "PGC_LISTEN";
    /// The URL users reach the console at (behind Traefik in production); its scheme decides cookie security.
    public_url: String = "http://127.0.0.1:18080".into(), env "PGC_PUBLIC_URL";
    /// Directory holding the built site (pkg/ with the wasm, js and css).
    site_root: PathBuf = PathBuf::from("target/site"), env "PGC_SITE_ROOT";
    /// Patroni scope (cluster name), shown in the UI and used when no member answers.
    cluster_name: String = "postgresql-cluster".into(), env "PGC_CLUSTER_NAME";
    /// Patroni members as NAME=REST_API_URL (env: comma-separated).
    members: Vec<String> = vec![
        "pg-0=http://127.0.0.1:18008".into(),
        "pg-1=http://127.0.0.1:18009".into(),
        "pg-2=http://127.0.0.1:18010".into(),
    ], env "PGC_MEMBERS";
    /// Timeout of each request to a Patroni REST API, in milliseconds.
    patroni_timeout_ms: u64 = 800, env "PGC_PATRONI_TIMEOUT_MS";
    /// HAProxy (pg-router) stats CSV URL the console reads.
    haproxy_stats_csv_url: String = "http://127.0.0.1:17000/;csv".into(), env "PGC_HAPROXY_STATS_CSV_URL";
    /// HAProxy stats page URL linked from the UI (the SOP's Traefik route, e.g. https://pg-haproxy.local.dev).
    haproxy_stats_public_url: String = "http://127.0.0.1:17000/".into(), env "PGC_HAPROXY_STATS_PUBLIC_URL";
    /// HAProxy listener that is the write endpoint.
    haproxy_write_listener: String = "primary".into(), env "PGC_HAPROXY_WRITE_LISTENER";
    /// HAProxy listener that is the read endpoint.
    haproxy_read_listener: String = "replicas".into(), env "PGC_HAPROXY_READ_LISTENER";
    /// Write endpoint host:port shown to users (SOP: pg-router:5000).
    write_endpoint: String = "127.0.0.1:15000".into(), env "PGC_WRITE_ENDPOINT";
    /// Read endpoint host:port shown to users (SOP: pg-router:5001).
    read_endpoint: String = "127.0.0.1:15001".into(), env "PGC_READ_ENDPOINT";
    /// Database named in the connection strings shown to users.
    database: String = "postgres".into(), env "PGC_DATABASE";
    /// User named in the connection strings shown to users (never a password).
    database_user: String = "postgres".into(), env "PGC_DATABASE_USER";
    /// The stack's replication user (Patroni's `replication` login): hot base backups log in as it.
    replication_user: String = "replicator".into(), env "PGC_REPLICATION_USER";
    /// The stack's generated secrets (KEY=VALUE): PATRONI_API_USERNAME/PASSWORD for Patroni's unsafe
    /// methods, PG_SUPERUSER_PASSWORD for the write-endpoint probe, PG_REPLICATION_PASSWORD for hot
    /// base backups. Never logged or audited.
    stack_secrets_file: PathBuf = PathBuf::from(".data/secrets.env"), env "PGC_STACK_SECRETS_FILE";
    /// The stack's DEFAULT_DATA_DIR (holds pg/pgN-data and etcd/), for whole-cluster reinitialization.
    stack_data_dir: PathBuf = PathBuf::from(".data/data"), env "PGC_STACK_DATA_DIR";
    /// Name of the stack's etcd container.
    etcd_container: String = "etcd".into(), env "PGC_ETCD_CONTAINER";
    /// HAProxy's container (shown beside the members on the Overview).
    router_container: String = "pg-router".into(), env "PGC_ROUTER_CONTAINER";
    /// Traefik's container (shown beside the members on the Overview; empty: not shown).
    edge_container: String = "traefik".into(), env "PGC_EDGE_CONTAINER";
    /// The continuous WAL archive pg-wal writes (one folder per system identifier;
    /// empty: `<stack_data_dir>/wal-archive`).
    wal_archive_dir: PathBuf = PathBuf::new(), env "PGC_WAL_ARCHIVE_DIR";
    /// pg-wal's permanent replication slot (Patroni `slots`).
    wal_slot: String = "pg_wal_archive".into(), env "PGC_WAL_SLOT";
    /// pg-wal's container (shown beside the members on the Overview; empty: the WAL archive is not watched).
    wal_container: String = "pg-wal".into(), env "PGC_WAL_CONTAINER";
    /// The Overview raises an alert when the leader keeps this many MB of WAL for pg-wal's slot.
    wal_retained_alert_mb: u64 = 1024, env "PGC_WAL_RETAINED_ALERT_MB";
    /// Where replica backups (archives + manifests) are written.
    backups_dir: PathBuf = PathBuf::from(".data/backups"), env "PGC_BACKUPS_DIR";
    /// Archives made by hand (the SOP's `tar -czvf pgN-backup.tar.gz …`) placed here can be
    /// imported into the catalog from the Backups page (empty: `<backups_dir>/import`).
    imports_dir: PathBuf = PathBuf::new(), env "PGC_IMPORTS_DIR";
    /// Backups are refused while the replica lags more than this many bytes.
    backup_max_lag_bytes: u64 = 16 * 1024 * 1024, env "PGC_BACKUP_MAX_LAG_BYTES";
    /// Retention: keep the newest N backups (0: no count limit). With keep_days too, a backup is
    /// kept when either rule keeps it. Applied after each successful backup, audited.
    backup_keep_last: u32 = 0, env "PGC_BACKUP_KEEP_LAST";
    /// Retention: keep backups younger than this many days (0: no age limit).
    backup_keep_days: u32 = 0, env "PGC_BACKUP_KEEP_DAYS";
    /// A restored cluster that is not healthy within this many seconds is rolled back
    /// (its previous data put back and started again).
    restore_timeout_secs: u64 = 600, env "PGC_RESTORE_TIMEOUT_SECS";
    /// How many days the incident timeline keeps its events.
    timeline_retention_days: u64 = 30, env "PGC_TIMELINE_RETENTION_DAYS";
    /// How often (seconds) the timeline looks at the cluster for changes, and samples the replicas' lag.
    timeline_sample_secs: u64 = 2, env "PGC_TIMELINE_SAMPLE_SECS";
    /// Upper bound of one Patroni operation call (a switchover waits for Patroni), in seconds.
    operation_timeout_secs: u64 = 90, env "PGC_OPERATION_TIMEOUT_SECS";
    /// How long a prepared operation's confirmation stays valid, in seconds.
    operation_token_ttl_secs: u64 = 300, env "PGC_OPERATION_TOKEN_TTL_SECS";
    /// Directory of the console's own data (SQLite database: users, sessions, audit log).
    data_dir: PathBuf = PathBuf::from(".data/console"), env "PGC_DATA_DIR";
    /// A session ends after this many seconds without a request.
    session_idle_secs: u64 = 1800, env "PGC_SESSION_IDLE_SECS";
    /// A session ends this many seconds after login, active or not.
    session_absolute_secs: u64 = 28800, env "PGC_SESSION_ABSOLUTE_SECS";
    /// First lockout after 5 failed logins within an hour, in seconds; each further failure doubles it
    /// (max 15 min). Failures older than an hour are forgotten.
    lockout_base_secs: u64 = 30, env "PGC_LOCKOUT_BASE_SECS";
    /// Login attempts per source IP per 10 minutes (failures plus attempts in flight) before further
    /// attempts get 429.
    login_failures_per_ip: u32 = 30, env "PGC_LOGIN_FAILURES_PER_IP";
    /// Reverse proxies (IP addresses) whose X-Forwarded-For is believed, e.g. Traefik's.
    trusted_proxies: Vec<String> = Vec::new(), env "PGC_TRUSTED_PROXIES";
    /// Password hashes computed at once (argon2id uses 19 MiB each).
    max_concurrent_hashes: usize = 2, env "PGC_MAX_CONCURRENT_HASHES";
    /// Password checks allowed to wait for a hashing slot; more get 429 with Retry-After at once.
    max_queued_hashes: usize = 16, env "PGC_MAX_QUEUED_HASHES";
    /// The console's own secrets (the audit log's HMAC key), created at first start, mode 600; the
    /// audit head is recorded beside it. Default: console-secrets.env in data_dir. Keep it off the
    /// database's volume in production.
    console_secrets_file: Option<PathBuf> = None, env "PGC_CONSOLE_SECRETS_FILE";
    /// Refusals a client can cause at will (failed logins, cross-origin or forbidden requests) from one
    /// source are written once, then counted and written as one entry per this many seconds.
    audit_aggregate_window_secs: u64 = 60, env "PGC_AUDIT_AGGREGATE_WINDOW_SECS";
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `server=debug,info`.
    log: String = "info".into(), env "PGC_LOG";
    /// Log lines as `text` (for people) or `json` (one object per line, for log shippers;
    /// an operation's lines carry its correlation id, the job id the audit log shows).
    log_format: LogFormat = LogFormat::Text, env "PGC_LOG_FORMAT";
}

/// Parse a setting's text (from the environment) into its type: as a TOML
/// value first (`8080`, `true`, `["a","b"]`), else as a plain string, else as
/// a comma-separated list of strings.
/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn parse_value<T: DeserializeOwned>(raw: &str) -> Result<T, String> {
    #[derive(Deserialize)]
    struct Wrap<T> {
        v: T,
    }
    let attempts = [
        format!("v = {raw}"),
        format!("v = {}", toml::Value::String(raw.to_string())),
        format!(
            "v = {}",
            toml::Value::Array(
                raw.split(',')
                    .map(|s| toml::Value::String(s.trim().to_string()))
                    .collect()
            )
        ),
    ];
    let mut last = String::new();
    for text in attempts {
        match toml::from_str::<Wrap<T>>(&text) {
            Ok(w) => return Ok(w.v),
            Err(e) => last = e.message().to_string(),
        }
    }
    Err(last)
}

impl Config {
    /// Defaults, then the TOML file (if any), then the environment.
    pub fn load(file: Option<&Path>, get_env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::File {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        cfg.apply_env(get_env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let members = self.member_endpoints()?;
        if members.is_empty() {
            return Err(ConfigError::Invalid {
                key: "members",
                message: "name at least one Patroni member".into(),
            });
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: format!("{:?} must start with http:// or https://", self.public_url),
            });
        }
        for p in &self.trusted_proxies {
            if p.parse::<std::net::IpAddr>().is_err() {
                return Err(ConfigError::Invalid {
                    key: "trusted_proxies",
                    message: format!("{p:?} is not an IP address"),
                });
            }
        }
        if self.session_idle_secs == 0 || self.session_absolute_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "session_idle_secs",
                message: "session timeouts must be > 0".into(),
            });
        }
        Ok(())
    }

    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        let rest = self.public_url.split_once("://").map(|(_, r)| r).unwrap_or("");
        let host = rest.split('/').next().unwrap_or("");
        let scheme = if self.is_https() { "https" } else { "http" };
        format!("{scheme}://{host}")
    }

    /// The WAL archive's root (one folder per system identifier), if the console watches it.
    pub fn wal_archive_path(&self) -> Option<PathBuf> {
        match (
            self.wal_container.is_empty(),
            self.wal_archive_dir.as_os_str().is_empty(),
        ) {
            (true, _) => None,
            (false, true) => Some(self.stack_data_dir.join("wal-archive")),
            (false, false) => Some(self.wal_archive_dir.clone()),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("console.db")
    }

    pub fn console_secrets_path(&self) -> PathBuf {
        self.console_secrets_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("console-secrets.env"))
    }

    /// `members` as (name, REST API URL) pairs.
    pub fn member_endpoints(&self) -> Result<Vec<domain::patroni::MemberEndpoint>, ConfigError> {
        self.members
            .iter()
            .map(|m| {
                let (name, url) = m.split_once('=').ok_or_else(|| ConfigError::Invalid {
                    key: "members",
                    message: format!("{m:?} is not NAME=URL (e.g. pg-0=http://127.0.0.1:8008)"),
                })?;
                let (name, url) = (name.trim(), url.trim());
                if name.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        key: "members",
                        message: format!("{m:?}: the name must not be empty and the URL must start with http(s)://"),
                    });
                }
                Ok(domain::patroni::MemberEndpoint {
                    name: name.to_string(),
                    api_url: url.to_string(),
                })
            })
            .collect()
    }

    /// The settings table printed by `--help`.
    pub fn help_table() -> String {
        let defaults = toml::Value::try_from(Config::default()).expect("defaults serialise");
        let mut out = String::new();
        for s in SETTINGS {
            let default = defaults.get(s.key).map(|v| v.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "  {:<26} {}\n      env {}  default {}\n",
                s.key,
                s.doc.trim(),
                s.env,
                default
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_run_the_demo_stack() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.listen.port(), 18080);
        assert_eq!(c.member_endpoints().unwrap().len(), 3);
        assert_eq!(c.write_endpoint, "127.0.0.1:15000");
    }

    #[test]
    fn env_overrides_file_and_parses_types() {
        let dir = std::env::temp_dir().join(format!("pgc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\npatroni_timeout_ms = 100\ncluster_name = \"file\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("PGC_PATRONI_TIMEOUT_MS", "250"),
                ("PGC_MEMBERS", "a=http://h:1, b=http://h:2"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.patroni_timeout_ms, 250);
        assert_eq!(c.cluster_name, "file");
        assert_eq!(c.members, vec!["a=http://h:1", "b=http://h:2"]);
        let single = Config::load(None, env(&[("PGC_MEMBERS", "only=http://h:1")])).unwrap();
        assert_eq!(single.members, vec!["only=http://h:1"]);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let e = Config::load(None, env(&[("PGC_PATRONI_TIMEOUT_MS", "soon")])).unwrap_err();
        assert!(e.to_string().contains("PGC_PATRONI_TIMEOUT_MS"), "{e}");
        let e = Config::load(None, env(&[("PGC_MEMBERS", "pg-0")])).unwrap_err();
        assert!(e.to_string().contains("NAME=URL"), "{e}");
        let dir = std::env::temp_dir().join(format!("pgc-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "no_such_setting = 1\n").unwrap();
        let e = Config::load(Some(&file), env(&[])).unwrap_err();
        assert!(e.to_string().contains("no_such_setting"), "{e}");
    }

    #[test]
    fn help_lists_every_setting() {
        let help = Config::help_table();
        for s in SETTINGS {
            assert!(
                help.contains(s.key) && help.contains(s.env),
                "{} missing from --help",
                s.key
            );
        }
    }
}
