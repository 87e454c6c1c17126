pub mod endpoints;
pub mod haproxy_table;
pub mod history_table;
pub mod jobs;
#[cfg(feature = "hydrate")]
pub mod live;
pub mod operations;
pub mod topology_table;
