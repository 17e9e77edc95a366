//! `healthcheck`: asks the local service for `/health/ready` and exits 0 only on a 200, so a
//! container image needs no HTTP client of its own.

use std::process::ExitCode;
use std::time::Duration;

use super::{fail, http_get};
use crate::config::ServiceAddress;

pub fn run(timeout_secs: u64) -> ExitCode {
    let address = match ServiceAddress::from_env() {
        Ok(address) => address,
        Err(error) => return fail(format!("configuration error: {error}")),
    };
    match readiness_status(&address, Duration::from_secs(timeout_secs)) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => fail(format!("not ready: /health/ready answered {status}")),
        Err(error) => fail(format!("not ready: {error}")),
    }
}

/// The status code of `GET /health/ready` on the service at `address`.
fn readiness_status(address: &ServiceAddress, timeout: Duration) -> std::io::Result<u16> {
    let target = (address.connect_host(), address.port);
    http_get::get(target, "localhost", "/health/ready", None, timeout).map(|answer| answer.status)
}
