//! A `postgres://` (or `postgresql://`) `DATABASE_URL`: where the server is, who to log in as,
//! and how to protect the connection.
//!
//! The URL is read the way libpq reads it (`postgres://user:password@host:port/dbname?options`,
//! with `application_name`, `connect_timeout`, `options`, keepalive and the other options the
//! driver knows), except `sslmode`, which is read here because the driver knows only `disable`,
//! `prefer` and `require`: `verify-ca` and `verify-full` verify the server's certificate (and its
//! host name) against the system's trusted roots, or the CA file `DATABASE_CA_FILE` names.
//!
//! The password is kept only in the driver's configuration: [`PostgresUrl`]'s `Display` and
//! `Debug`, and every refusal of a URL, show the URL without it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use native_tls::{Certificate, TlsConnector};
use postgres::config::{Host, SslMode};
use postgres_native_tls::MakeTlsConnector;

/// How long connecting may take when the URL does not say (`connect_timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive and user timeout, so a server that vanishes without closing the connection
/// (a partition, a dead host) is noticed within seconds rather than the kernel's minutes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// libpq's `sslmode`, all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS always; the certificate is checked only against a CA file when one is given.
    Require,
    /// TLS always, the certificate checked against the trusted roots; any host name.
    VerifyCa,
    /// TLS always, the certificate checked against the trusted roots and the host name.
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A parsed PostgreSQL URL: the driver's configuration and the TLS mode.
#[derive(Clone)]
pub struct PostgresUrl {
    config: postgres::Config,
    tls: TlsMode,
    /// The URL as logs may show it: no password.
    shown: String,
}

impl PostgresUrl {
    /// Reads a `postgres://` or `postgresql://` URL; `Err` says why not, without the password.
    pub fn parse(url: &str) -> Result<Self, &'static str> {
        let parts = UrlParts::of(url).ok_or("not a postgres:// URL")?;
        let (location, query) = parts.rest.split_once('?').unwrap_or((parts.rest, ""));
        let base = match parts.userinfo {
            Some(userinfo) => format!("{}://{userinfo}@{location}", parts.scheme),
            None => format!("{}://{location}", parts.scheme),
        };
        let mut tls = TlsMode::Prefer;
        let mut passed_on = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    tls = TlsMode::parse(value).ok_or(
                        "sslmode must be disable, prefer, require, verify-ca or verify-full",
                    )?;
                }
                "sslrootcert" | "sslcert" | "sslkey" => {
                    return Err("give the CA file in DATABASE_CA_FILE, not in the URL");
                }
                _ => passed_on.push(pair),
            }
        }
        let driver_url = if passed_on.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed_on.join("&"))
        };
        let mut config: postgres::Config = driver_url
            .parse()
            .map_err(|_| "not a valid postgres://user:password@host:port/dbname URL")?;
        if config.get_hosts().is_empty() {
            return Err("the URL names no host");
        }
        if config.get_dbname().is_none() {
            return Err("the URL names no database");
        }
        if config.get_user().is_none() {
            return Err("the URL names no user");
        }
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        config
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("webhook-processor");
        }
        let shown = show(&config, tls);
        Ok(Self { config, tls, shown })
    }

    /// The driver's configuration, password included.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The TLS connector for this URL's `sslmode`, trusting `ca_file` (PEM) instead of the
    /// system's roots when given.
    pub fn connector(&self, ca_file: Option<&Path>) -> Result<MakeTlsConnector, String> {
        let mut builder = TlsConnector::builder();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read DATABASE_CA_FILE {}: {e}", path.display()))?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "DATABASE_CA_FILE {} is not a PEM certificate: {e}",
                    path.display()
                )
            })?;
            builder
                .add_root_certificate(certificate)
                .disable_built_in_roots(true);
        }
        match self.tls {
            TlsMode::Disable | TlsMode::Prefer => {
                builder.danger_accept_invalid_certs(true);
            }
            // libpq: `require` checks the chain only when a CA file is given.
            TlsMode::Require if ca_file.is_none() => {
                builder.danger_accept_invalid_certs(true);
            }
            TlsMode::Require | TlsMode::VerifyCa => {
                builder.danger_accept_invalid_hostnames(true);
            }
            TlsMode::VerifyFull => {}
        }
        builder
            .build()
            .map(MakeTlsConnector::new)
            .map_err(|e| format!("cannot set up TLS: {e}"))
    }
}

/// The URL without its password, as logs and errors may show it.
fn show(config: &postgres::Config, tls: TlsMode) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    format!(
        "postgres://{}@{}/{}?sslmode={}",
        config.get_user().unwrap_or_default(),
        hosts.join(","),
        config.get_dbname().unwrap_or_default(),
        tls.as_str()
    )
}

/// A URL refused before it could be parsed, shown with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(parts) = UrlParts::of(url) else {
        return "(not a URL)".to_owned();
    };
    let rest = tail_without_password(parts.rest);
    match parts.userinfo {
        Some(userinfo) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{}://{user}:***@{rest}", parts.scheme)
        }
        None => format!("{}://{rest}", parts.scheme),
    }
}

/// A URL cut where the driver cuts it: the credentials are everything before the first `@`
/// (a password may hold `/` or `?`, which URLs should escape and people do not), the rest is
/// hosts, database and options.
struct UrlParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn of(url: &'a str) -> Option<Self> {
        let (scheme, after_scheme) = url.split_once("://")?;
        Some(match after_scheme.split_once('@') {
            Some((userinfo, rest)) => Self {
                scheme,
                userinfo: Some(userinfo),
                rest,
            },
            None => Self {
                scheme,
                userinfo: None,
                rest: after_scheme,
            },
        })
    }
}

/// Hosts, path and options of a URL, with a `password=` option's value hidden.
fn tail_without_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", self.shown)
    }
}

impl PartialEq for PostgresUrl {
    fn eq(&self, other: &Self) -> bool {
        self.shown == other.shown && self.config.get_password() == other.config.get_password()
    }
}

impl Eq for PostgresUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_read_as_libpq_reads_it_with_every_sslmode() {
        let url = PostgresUrl::parse(
            "postgresql://app:s3cr3t@db.example:6432/messages?sslmode=verify-full&application_name=wp&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(url.config().get_user(), Some("app"));
        assert_eq!(url.config().get_password(), Some(&b"s3cr3t"[..]));
        assert_eq!(url.config().get_dbname(), Some("messages"));
        assert_eq!(url.config().get_ports(), &[6432]);
        assert_eq!(url.config().get_application_name(), Some("wp"));
        assert_eq!(
            url.config().get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(url.tls, TlsMode::VerifyFull);
        assert_eq!(url.config().get_ssl_mode(), SslMode::Require);
        for (mode, tls) in [
            ("disable", TlsMode::Disable),
            ("prefer", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::VerifyCa),
        ] {
            let url = PostgresUrl::parse(&format!("postgres://u@h/d?sslmode={mode}")).unwrap();
            assert_eq!(url.tls, tls);
        }
        let defaults = PostgresUrl::parse("postgres://u@h/d").unwrap();
        assert_eq!(defaults.tls, TlsMode::Prefer);
        assert_eq!(
            defaults.config().get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
    }

    #[test]
    fn the_password_never_shows() {
        let url = PostgresUrl::parse("postgres://app:hunter2@db:5432/messages").unwrap();
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("app@db:5432/messages"), "{shown}");
        }
        for refused in [
            "postgres://app:hunter2@db:5432/messages?sslmode=bogus",
            "postgres://app:hunter2@db/x?password=hunter2&sslrootcert=/ca.pem",
        ] {
            assert!(!redact(refused).contains("hunter2"), "{}", redact(refused));
        }
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/m?password=hunter2"),
            "postgres://app:***@db:5432/m?password=***"
        );
        for password in ["Zm9v/YmFy", "pa?ss-42", "a/b?c"] {
            let url = format!("postgres://app:{password}@db:notaport/m");
            assert!(!redact(&url).contains(password), "{}", redact(&url));
        }
    }

    #[test]
    fn a_password_holding_a_slash_or_question_mark_leaves_the_options_alone() {
        let url =
            PostgresUrl::parse("postgres://app:pa?ss/42@db:5432/m?sslmode=verify-full").unwrap();
        assert_eq!(url.config().get_password(), Some(&b"pa?ss/42"[..]));
        assert_eq!(url.tls, TlsMode::VerifyFull);
        assert_eq!(url.config().get_dbname(), Some("m"));
        assert!(!url.to_string().contains("pa?ss"), "{url}");
    }

    #[test]
    fn malformed_urls_are_refused_with_a_reason() {
        for bad in [
            "postgres://app@db/m?sslmode=allow",
            "postgres://app@db/m?sslrootcert=ca.pem",
            "postgres://app@db:notaport/m",
            "postgres:///m",
            "postgres://app@db",
        ] {
            assert!(PostgresUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
