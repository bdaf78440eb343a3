//! Revisit: books follow-up visits for field service, serving the seiapi v3 contract.
//!
//! Where things are:
//! - `api/`: where a request enters (one module per seiapi resource, wire types beside them);
//! - `domain/`: work orders, statuses, rules, configuration (no HTTP, no SQL);
//! - `schedule/`: the interface behind the follow-up endpoints and its implementations;
//! - `gateway/`: the one outbound HTTP client (pass-through to third-party schedulers);
//! - `store/`: the storage contract and its SQLite and PostgreSQL implementations;
//! - `auth/`: tokens, passwords and the extractor that yields the caller;
//! - `notify/`: outbound notifications (ExportNotifications) from the outbox;
//! - `web`: the browser apps (files of `web/` compiled in), clients of the same API;
//! - `config`, `cli`, `app`: process set-up.

// ApiError travels only on the error path; boxing it would buy nothing measurable.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod app;
pub mod auth;
pub mod booking;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod import;
pub mod metrics;
pub mod notify;
pub mod reoptimize;
pub mod schedule;
pub mod server;
pub mod store;
pub mod web;
