pub mod admin;
pub mod audit;
pub mod login;
pub mod overview;
