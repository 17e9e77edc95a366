//! WebhookProcessor: receives signed webhook messages, stores each exactly once in SQLite, and
//! serves them back through a filtered, paginated query API.
#![forbid(unsafe_code)]

pub mod actors;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod signing;
pub mod startup;
pub mod storage;
pub mod telemetry;
