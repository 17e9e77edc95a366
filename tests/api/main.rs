//! Black-box tests: each starts the real server on 127.0.0.1:0 with a fresh temporary database
//! and talks HTTP to it.

mod binary;
mod commands;
mod container;
mod data;
mod helpers;

mod hardening;
mod health;
mod http_semantics;
mod logging;
mod messages;
mod metrics;
mod openapi;
mod openapi_conformance;
mod process;
mod routing;
mod security;
mod standard_webhooks;
mod stats;
mod webhook;
