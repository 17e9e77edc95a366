//! `serve`: read the configuration, start logging, serve until stopped.

use std::process::ExitCode;

use super::fail;
use crate::config::Config;
use crate::startup::Application;
use crate::telemetry;

pub fn run() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return fail(format!("configuration error: {error}")),
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
            fail(error)
        }
    }
}
