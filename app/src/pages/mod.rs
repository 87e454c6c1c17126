pub mod admin;
pub mod audit;
pub mod backups;
pub mod login;
pub mod logs;
pub mod member;
pub mod overview;
pub mod timeline;
