//! The integration tests: the real pg-console binary, spawned on a free port
//! against the real stack (Docker, etcd, Patroni + PostgreSQL, HAProxy). They
//! are `ignore`d for a bare `cargo test`; scripts/test runs them with
//! `--include-ignored` after `scripts/stack up`. One test binary, one module
//! per capability: twelve binaries took 12 links and 12 builds of `support`
//! (about 170 s of every CI run). Run one module with its path as the filter,
//! e.g. `cargo test -p server --test integration -- --include-ignored lag::`.
//! The deployment's tests (the console's container behind Traefik) are the
//! separate binary `edge`.

mod support;

mod auth;
mod backups;
mod base_backup;
mod checkout;
mod feed;
mod lag;
mod logs;
mod operations;
mod pitr;
mod restore;
mod routing;
mod security;
mod stack;
mod timeline;
mod wal_archive;
