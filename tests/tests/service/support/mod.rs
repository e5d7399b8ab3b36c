//! What the service tests share: a paid service on loopback for the server
//! tests, paid services and paying agents for the client tests, and a
//! PostgreSQL schema per test for the store tests.

pub mod client;
pub mod postgres;
pub mod server;
