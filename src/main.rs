//! Starts the service: read the configuration, start logging, serve until stopped.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use webhook_processor::config::Config;
use webhook_processor::startup::Application;
use webhook_processor::telemetry;

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("webhook-processor: configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(config.log_level);
    let served = actix_web::rt::System::new().block_on(async {
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "the service failed");
            eprintln!("webhook-processor: {error}");
            ExitCode::FAILURE
        }
    }
}
