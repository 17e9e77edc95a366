//! One module per command of the binary.

mod database;
pub mod export;
pub mod healthcheck;
mod http_get;
pub mod import;
mod progress;
pub mod serve;
pub mod sign;
pub mod tail;

/// Prints a command's failure as one line on standard error.
fn fail(error: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("webhook-processor: {error}");
    std::process::ExitCode::FAILURE
}
