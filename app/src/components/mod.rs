pub mod endpoints;
pub mod haproxy_table;
pub mod history_table;
pub mod operations;
pub mod topology_table;
