//! Patroni REST API: response parsing (3.x and 4.x shapes) and a client that
//! asks every configured member in parallel and merges one topology.

pub mod admin;
mod client;
mod merge;
pub mod wire;

pub(crate) use client::describe;
pub use client::{MemberEndpoint, PatroniClient, PatroniError};
pub use merge::{merge_topology, Probe};
