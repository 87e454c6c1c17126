use serde::{Deserialize, Serialize};

/// Which SOP endpoint a HAProxy listener implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListenerRole {
    Write,
    Read,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HaproxyServer {
    pub name: String,
    /// `UP`, `DOWN`, `UP 1/2`, `MAINT`, `no check` ...
    pub status: String,
    pub check_status: String,
    pub check_duration_ms: Option<u64>,
    pub last_check: String,
    pub sessions_current: u64,
    pub sessions_total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Seconds since the last UP/DOWN change.
    pub last_change_secs: Option<u64>,
}

impl HaproxyServer {
    pub fn is_up(&self) -> bool {
        self.status.starts_with("UP")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HaproxyListener {
    pub name: String,
    pub role: ListenerRole,
    pub status: String,
    pub sessions_current: u64,
    pub sessions_total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub servers: Vec<HaproxyServer>,
}

impl HaproxyListener {
    pub fn up_servers(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|s| s.is_up())
            .map(|s| s.name.clone())
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HaproxyStats {
    pub listeners: Vec<HaproxyListener>,
}

impl HaproxyStats {
    pub fn listener(&self, role: ListenerRole) -> Option<&HaproxyListener> {
        self.listeners.iter().find(|l| l.role == role)
    }
}
