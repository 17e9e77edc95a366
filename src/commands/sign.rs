//! `sign`: prints the `X-Signature` of the body on standard input, so senders can sign by hand:
//! `curl -H "X-Signature: $(printf '%s' "$BODY" | webhook-processor sign)" -d "$BODY" ...`.

use std::io::Read;
use std::process::ExitCode;

use super::fail;
use crate::config::SigningSecret;
use crate::domain::timestamp::now_secs;
use crate::signing::{KeyRing, encode_hex};

pub fn run(timestamp: Option<String>) -> ExitCode {
    let secret = match SigningSecret::from_env() {
        Ok(secret) => secret,
        Err(error) => return fail(format!("configuration error: {error}")),
    };
    let mut body = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut body) {
        return fail(format!("cannot read standard input: {error}"));
    }
    let keys = KeyRing::new(secret.webhook_secret.expose(), None);
    let signature = match timestamp.as_deref() {
        None => keys.sign(&[&body]),
        Some(timestamp) => {
            let timestamp = if timestamp == "now" {
                let now = now_secs().to_string();
                eprintln!("{now}");
                now
            } else {
                timestamp.to_owned()
            };
            keys.sign(&[timestamp.as_bytes(), b".", &body])
        }
    };
    println!("{}", encode_hex(&signature));
    ExitCode::SUCCESS
}
