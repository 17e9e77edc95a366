//! The command line: `webhook-processor [COMMAND]`, where the default command serves.

use std::path::PathBuf;
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
    /// Write stored messages to standard output as NDJSON, oldest first (reads DATABASE_URL)
    Export {
        #[command(flatten)]
        filters: ExportFilters,
    },
    /// Load messages from an NDJSON file, or from the original service's SQLite database, with
    /// the same validation as /webhook (reads DATABASE_URL)
    Import {
        /// The NDJSON file, one message object per line
        #[arg(
            required_unless_present = "from_sqlite",
            conflicts_with = "from_sqlite"
        )]
        file: Option<PathBuf>,
        /// Migrate the messages table of this SQLite database instead
        #[arg(long, value_name = "OLD_DB")]
        from_sqlite: Option<PathBuf>,
        /// Import the valid records even when some are invalid (they are reported and skipped)
        #[arg(long)]
        skip_invalid: bool,
        /// Commit every N rows instead of once at the end (to import beside a running service)
        #[arg(long, value_name = "N")]
        commit_every: Option<usize>,
    },
    /// Print the feed as NDJSON, one message per line with its position (seq), from a position
    /// on (reads DATABASE_URL, or the service at --url)
    Tail {
        /// Print the messages after this position (0: from the beginning)
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Keep printing messages as they are committed
        #[arg(long)]
        follow: bool,
        /// Read the /messages/feed of this running service (http://host:port) instead of the
        /// database; API_TOKEN is sent when set
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Print the X-Signature of the body read from standard input (reads WEBHOOK_SECRET)
    Sign {
        /// Sign `{timestamp}.{body}`, for X_SIGNATURE_TIMESTAMP senders; `now` for the current
        /// Unix time (the timestamp is printed on standard error)
        #[arg(long)]
        timestamp: Option<String>,
    },
}

/// The filters of `export`, as `/messages` takes them.
#[derive(clap::Args)]
struct ExportFilters {
    /// Only messages from this number
    #[arg(long)]
    from: Option<String>,
    /// Only messages to this number
    #[arg(long)]
    to: Option<String>,
    /// Only messages at or after this instant (RFC 3339 UTC)
    #[arg(long)]
    since: Option<String>,
    /// Only messages before this instant (RFC 3339 UTC)
    #[arg(long)]
    until: Option<String>,
    /// Only messages whose text contains this, ignoring case
    #[arg(long)]
    q: Option<String>,
}

impl ExportFilters {
    fn pairs(self) -> Vec<(&'static str, String)> {
        [
            ("from", self.from),
            ("to", self.to),
            ("since", self.since),
            ("until", self.until),
            ("q", self.q),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }
}

/// Parses the arguments and runs the chosen command.
pub fn run() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => commands::serve::run(),
        Command::Healthcheck { timeout_secs } => commands::healthcheck::run(timeout_secs),
        Command::Export { filters } => commands::export::run(&filters.pairs()),
        Command::Import {
            file,
            from_sqlite,
            skip_invalid,
            commit_every,
        } => {
            let source = match (file, from_sqlite) {
                (_, Some(old)) => commands::import::Source::LegacySqlite(old),
                (Some(file), None) => commands::import::Source::Ndjson(file),
                (None, None) => unreachable!("clap requires a file or --from-sqlite"),
            };
            commands::import::run(source, skip_invalid, commit_every)
        }
        Command::Tail { after, follow, url } => {
            let source = match url {
                Some(url) => commands::tail::Source::Service(url),
                None => commands::tail::Source::Database,
            };
            commands::tail::run(source, after, follow)
        }
        Command::Sign { timestamp } => commands::sign::run(timestamp),
    }
}
