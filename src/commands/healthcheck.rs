//! `healthcheck`: asks the local service for `/health/ready` and exits 0 only on a 200, so a
//! container image needs no HTTP client of its own.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use super::fail;
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
    let target = (address.connect_host(), address.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    // "HTTP/1.x NNN"
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}
