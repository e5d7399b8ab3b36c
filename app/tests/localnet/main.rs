//! The whole product across real processes on `amp localnet`: the node in
//! one process, `amp serve` in another (three replicas on one PostgreSQL
//! database in `replicas`), agents (`amp pay`) in more, each started as a
//! user starts it (see `support`).
//!
//! Its own test binary: these tests run in wall-clock time (400 ms slots),
//! beside the in-process suites.

mod commands;
mod crash;
mod faults;
mod llm;
mod mcp;
mod metrics;
mod node_process;
mod outbound;
mod paid_api;
mod postgres;
mod replicas;
mod service;
mod sessions;
mod solana_cli;
mod spend;
mod sponsored;
mod support;
mod typescript;

#[path = "../common/openai.rs"]
mod openai;
