//! A plain HTTP/1.0 `GET` for the commands that ask a running service something
//! (`healthcheck`, `tail --url`), so they need no HTTP client of their own.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// What the service answered.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// `GET path` on the service at `target` (named `host` in the request), with the bearer
/// `token` when one is given; `timeout` bounds the connection, the request and the answer,
/// each.
pub fn get(
    target: impl ToSocketAddrs,
    host: &str,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Answer> {
    let address = target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let authorization = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n{authorization}\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let not_http = || std::io::Error::other("not an HTTP answer");
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(not_http)?;
    // "HTTP/1.x NNN ..."
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(not_http)?;
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}
