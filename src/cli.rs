//! The command line: `webhook-processor [COMMAND]`, where the default command serves.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::config::settings_help;

#[derive(Parser)]
#[command(
    name = "webhook-processor",
    version,
    about = "Receives signed webhook messages, stores each exactly once, and serves them back.",
    after_help = settings_help()
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (what runs when no command is given)
    Serve,
    /// Exit 0 when the local service answers GET /health/ready with 200 (for container health
    /// checks; reads HOST and PORT)
    Healthcheck {
        /// Seconds to wait for the answer
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Print the X-Signature of the body read from standard input (reads WEBHOOK_SECRET)
    Sign {
        /// Sign `{timestamp}.{body}`, for X_SIGNATURE_TIMESTAMP senders; `now` for the current
        /// Unix time (the timestamp is printed on standard error)
        #[arg(long)]
        timestamp: Option<String>,
    },
}

/// Parses the arguments and runs the chosen command.
pub fn run() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => commands::serve::run(),
        Command::Healthcheck { timeout_secs } => commands::healthcheck::run(timeout_secs),
        Command::Sign { timestamp } => commands::sign::run(timestamp),
    }
}
