//! `revisit-bench`: the benchmarks of `BENCHMARKS.md`, outside the server. Each one serves the
//! real `revisit` router in this process on a loopback port, on a database of its own, and
//! drives it over HTTP; nothing leaves the machine.
//!
//! - `search`: slot-search latency and throughput (`search.rs`);
//! - `book`: follow-up bookings by concurrent clients, contended or `--spread`, then a
//!   double-booking check (`book.rs`, `check.rs`);
//! - `passthrough`: the latency pass-through adds (`passthrough.rs`);
//! - `quality`: route quality of follow-ups booked one at a time, then re-optimised
//!   (`quality.rs`; `bench/vroom_compare.py` compares with VROOM);
//! - `notify`: delivery of outbound notifications under a write load (`notify.rs`).
//!
//! The server is configured as `revisit` is (`--config FILE`, `REVISIT_*` variables); the bench
//! then sets the database, a signing key and a pool of at least 32 connections itself.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use revisit::config::Config;

mod book;
mod check;
mod harness;
mod notify;
mod passthrough;
mod quality;
mod report;
mod search;

#[derive(Parser)]
#[command(
    name = "revisit-bench",
    version,
    about = "Measures Revisit on seeded data: slot search, follow-up booking, pass-through latency, route quality."
)]
struct Cli {
    /// Optional TOML configuration file of the server; REVISIT_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Slot-search latency (in process and over HTTP), then slot-search throughput over HTTP.
    Search(search::SearchArgs),
    /// Follow-up bookings over HTTP (contended by default, `--spread` over the whole horizon),
    /// then a double-booking check of every open visit.
    Book(book::BookArgs),
    /// Latency added by pass-through: one receiver called directly and through Revisit.
    Passthrough(passthrough::PassthroughArgs),
    /// Route quality: follow-ups booked one at a time over HTTP, then re-optimised.
    Quality(quality::QualityArgs),
    /// Delivery of outbound notifications under a work-order write load: latency, events/s.
    Notify(notify::NotifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("revisit-bench: {e}");
            return ExitCode::from(2);
        }
    };
    // The HTTP clients are reqwest with rustls and no built-in crypto provider (the workspace's
    // choice, see the root Cargo.toml); install the one the server's gateway uses before any
    // client is built. Fails harmlessly when one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("revisit-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Search(a) => search::run(a, config).await,
            Command::Book(a) => book::run(a, config).await,
            Command::Passthrough(a) => passthrough::run(a, config).await,
            Command::Quality(a) => quality::run(a, config).await,
            Command::Notify(a) => notify::run(a, config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("revisit-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server's log, as `revisit` writes it: `REVISIT_LOG` filters (default `info`, a line per
/// request: set `REVISIT_LOG=error` to keep it out of the figures).
fn init_logging() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_env("REVISIT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
