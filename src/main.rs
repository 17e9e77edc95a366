//! The `webhook-processor` binary; see `webhook-processor --help`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    webhook_processor::cli::run()
}
