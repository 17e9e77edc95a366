//! Black-box tests: each starts the real server on 127.0.0.1:0 with a fresh database and talks
//! HTTP to it; the tests of the contract run on every store (`store.rs`).

mod binary;
mod commands;
mod container;
mod data;
mod feed_follow;
mod helpers;
mod postgres;
mod postgres_setup;
mod postgres_store;
mod store;

mod feed;
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
mod tail;
mod webhook;
