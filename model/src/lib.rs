//! Data shared between the native domain layer and the browser UI.
//! Plain serde types only: this crate compiles to wasm32.

pub mod auth;
pub mod backups;
pub mod containers;
pub mod error;
pub mod haproxy;
pub mod jobs;
pub mod lag;
pub mod logs;
pub mod merge_patch;
pub mod operations;
pub mod overview;
pub mod time;
pub mod timeline;
pub mod topology;
pub mod wal;

pub use haproxy::{HaproxyListener, HaproxyServer, HaproxyStats, ListenerRole};
pub use overview::{Endpoint, EndpointKind, OperationRecord, Overview};
pub use topology::{HistoryEntry, Member, MemberState, Role, Topology, Unreachable};
