//! What only the PostgreSQL store has to get right at startup: a URL, a password or a database
//! that is wrong stops the service with one clear line that never holds the password; TLS is
//! used, and verified, as `sslmode` says; replicas starting together apply the migrations once,
//! and a schema newer than the build is refused.

use std::process::Output;
use std::sync::Barrier;
use std::time::Duration;

use serde_json::Value;

use crate::binary::{RunningBinary, command, output_within};
use crate::helpers::{message, sign_with};
use crate::postgres::{self, APP_PASSWORD, PostgresDatabase, psql_at};
use crate::store::{Store, TestDatabase};

const SECRET: &str = "postgres-store-secret";

/// A fresh database on the shared server, or `None` where there is none.
fn test_database() -> Option<TestDatabase> {
    Store::Postgres
        .runs_here()
        .then(|| TestDatabase::new(Store::Postgres))
}

/// Runs the service on `url` (plus `extra`) in `dir`, expecting it to stop by itself.
fn run_to_exit(dir: &std::path::Path, url: &str, extra: &[(&str, &str)]) -> Output {
    let mut vars = vec![
        ("WEBHOOK_SECRET", SECRET),
        ("DATABASE_URL", url),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
    ];
    vars.extend_from_slice(extra);
    output_within(command(dir, &vars), Duration::from_secs(30))
}

/// Asserts that the service stopped at startup as the contract says (a non-zero exit, exactly
/// one line on stderr, `password` nowhere in what it printed, its logs included) and returns
/// that line.
fn assert_refused_in_one_line(output: &Output, password: &str, case: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && output.status.code().is_some(),
        "{case}: exits by itself with a failure, not {:?}; stderr: {stderr}",
        output.status
    );
    assert_eq!(stderr.lines().count(), 1, "{case}: one line: {stderr}");
    for (stream, text) in [("stderr", &stderr), ("stdout", &stdout)] {
        assert!(
            !text.contains(password),
            "{case}: the password shows on {stream}: {text}"
        );
    }
    stderr.trim().to_owned()
}

#[test]
fn a_malformed_url_a_refused_password_or_a_missing_database_stops_startup_in_one_line() {
    let Some(database) = test_database() else {
        return;
    };
    let postgres = database.postgres();
    let Some(wrong_password) = postgres.url_with_password("not-the-password-7f3a") else {
        postgres::skip(
            "startup refusals",
            "TEST_DATABASE_URL's roles are not the tests' to know",
        );
        return;
    };
    let malformed = |tail: &str| format!("postgres://app:hunter2-in-url@{tail}");
    let cases = [
        // (why it must fail, URL, the password it holds, what the line must say)
        (
            "a port that is not a number",
            malformed("127.0.0.1:notaport/db"),
            "hunter2-in-url",
            "DATABASE_URL",
        ),
        (
            "an sslmode libpq does not have",
            malformed("127.0.0.1:5432/db?sslmode=sometimes"),
            "hunter2-in-url",
            "sslmode",
        ),
        (
            "no database named",
            malformed("127.0.0.1:5432"),
            "hunter2-in-url",
            "names no database",
        ),
        (
            "the role's password is wrong",
            wrong_password,
            "not-the-password-7f3a",
            "database refused the service's credentials",
        ),
        (
            "the database does not exist",
            postgres.url_of_database("no_such_database"),
            APP_PASSWORD,
            "database does not exist",
        ),
    ];

    for (case, url, password, expected) in cases {
        let output = run_to_exit(database.dir(), &url, &[]);
        let line = assert_refused_in_one_line(&output, password, case);
        assert!(line.contains(expected), "{case}: {line:?}");
    }
}

/// A password may hold characters that end a URL's authority (`/`, `?`): common in generated
/// passwords, and read as such by the driver, which takes everything up to the `@` as the
/// credentials. Whatever else is wrong with such a URL, the password must not be shown, and
/// `sslmode` must still hold.
#[test]
fn a_password_holding_a_slash_or_question_mark_is_never_shown_and_never_weakens_sslmode() {
    let Some(database) = test_database() else {
        return;
    };
    let Some(port) = database.postgres().local_port() else {
        postgres::skip(
            "passwords with URL delimiters",
            "it needs to know that the server has no TLS, as the one started here has not",
        );
        return;
    };
    let name = database.postgres().name().to_owned();
    let cases = [
        // (why it must fail, the password, URL, what the line must say)
        (
            "a malformed port, with a slash in the password",
            "Zm9v/YmFy",
            "postgres://app:Zm9v/YmFy@127.0.0.1:notaport/db".to_owned(),
            "DATABASE_URL",
        ),
        (
            "a malformed port, with a question mark in the password",
            "pa?ss-42",
            "postgres://app:pa?ss-42@127.0.0.1:notaport/db".to_owned(),
            "DATABASE_URL",
        ),
        (
            "sslmode=require against a server without TLS",
            "pa?ss-43",
            format!("postgres://app:pa?ss-43@127.0.0.1:{port}/{name}?sslmode=require"),
            "TLS",
        ),
    ];

    let mut problems = Vec::new();
    for (case, password, url, expected) in cases {
        let output = run_to_exit(database.dir(), &url, &[]);
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || stderr.lines().count() != 1 {
            problems.push(format!("{case}: not refused in one line: {stderr}"));
        } else if printed.contains(password) {
            problems.push(format!("{case}: the password shows: {}", stderr.trim()));
        } else if !stderr.contains(expected) {
            problems.push(format!(
                "{case}: does not say {expected:?}: {}",
                stderr.trim()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// How many connections to `database` the client named `application` holds, and whether
/// every one of them is encrypted.
fn connections_over_tls(database: &PostgresDatabase, application: &str) -> (usize, bool) {
    let seen = database
        .psql(&format!(
            "SELECT count(*) || ',' || coalesce(bool_and(ssl), false) \
             FROM pg_stat_activity JOIN pg_stat_ssl USING (pid) \
             WHERE datname = '{}' AND application_name = '{application}'",
            database.name()
        ))
        .expect("pg_stat_ssl answers");
    let (count, all) = seen.split_once(',').expect("count,bool");
    (count.parse().expect("a count"), all == "true")
}

/// Starts the service on `url` (which has options already), connecting as `application`,
/// proves it stores a message, and says whether its connections are encrypted.
async fn serves_over(
    database: &TestDatabase,
    application: &str,
    url: &str,
    extra: &[(&str, &str)],
) -> bool {
    let named = format!("{url}&application_name={application}");
    let mut vars = vec![
        ("DATABASE_URL", &*named),
        ("READERS", "1"),
        ("WORKERS", "1"),
    ];
    vars.extend_from_slice(extra);
    let service = RunningBinary::start(database, SECRET, &vars);
    let body = serde_json::to_vec(&message(
        &format!("tls-{}", service.port),
        "+14155550100",
        "+919876543210",
        "2025-01-15T10:00:00Z",
        Some("over TLS"),
    ))
    .unwrap();
    let answer = reqwest::Client::new()
        .post(service.url("/webhook"))
        .header("X-Signature", sign_with(SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(answer.status(), 200, "{url}: a message is stored");
    let (connections, encrypted) = connections_over_tls(database.postgres(), application);
    assert!(connections > 0, "{url}: the service is connected");
    encrypted
}

#[actix_web::test]
async fn tls_is_used_as_sslmode_says_and_a_server_that_cannot_be_verified_stops_startup() {
    let Some(cluster) = postgres::private_cluster("TLS to PostgreSQL") else {
        return;
    };
    let ca_file = match cluster.serve_tls() {
        Ok(ca_file) => ca_file,
        Err(why) => {
            postgres::skip("TLS to PostgreSQL", &why);
            return;
        }
    };
    let ca_file_name = ca_file.to_str().expect("a UTF-8 path");
    let database = TestDatabase::on(cluster.database());
    let by_address = database.url();
    let by_name = by_address.replace("@127.0.0.1:", "@localhost:");
    let with_ca = [("DATABASE_CA_FILE", ca_file_name)];
    // The server's own certificate: a PEM file, but not the CA that signed it.
    let server_certificate = ca_file.with_file_name("server.crt");
    let server_certificate = server_certificate.to_str().expect("a UTF-8 path");
    let without_issuer = [("DATABASE_CA_FILE", server_certificate)];

    let connecting = [
        // (the service's name on the server, URL, settings, whether encrypted, why)
        (
            "require",
            format!("{by_address}?sslmode=require"),
            &[][..],
            true,
            "sslmode=require encrypts, without checking the certificate",
        ),
        (
            "verify",
            format!("{by_name}?sslmode=verify-full"),
            &with_ca[..],
            true,
            "verify-full connects to the name on the certificate, signed by the CA given",
        ),
        (
            "disable",
            format!("{by_address}?sslmode=disable"),
            &[][..],
            false,
            "disable does not encrypt (so the check above can tell)",
        ),
    ];
    for (application, url, extra, encrypted, why) in connecting {
        let seen = serves_over(&database, application, &url, extra).await;
        assert_eq!(seen, encrypted, "{why}");
    }

    let refusals = [
        // (why it must fail, URL, settings, what the line must say besides the failed check)
        (
            "the certificate is for localhost, not 127.0.0.1",
            format!("{by_address}?sslmode=verify-full"),
            &with_ca[..],
            "IP address mismatch",
        ),
        (
            "the CA is not among the system's trusted roots",
            format!("{by_name}?sslmode=verify-full"),
            &[][..],
            "unable to get local issuer certificate",
        ),
        (
            "require checks the chain when given a CA file, here one without the issuer",
            format!("{by_address}?sslmode=require"),
            &without_issuer[..],
            "unable to get local issuer certificate",
        ),
    ];
    for (case, url, extra, cause) in refusals {
        let output = run_to_exit(database.dir(), &url, extra);
        let line = assert_refused_in_one_line(&output, APP_PASSWORD, case);
        assert!(
            line.contains("certificate verify failed") && line.contains(cause),
            "{case}: says why the server's certificate was refused: {line:?}"
        );
    }
}

#[actix_web::test]
async fn replicas_starting_at_the_same_moment_apply_each_migration_once_and_all_become_ready() {
    let Some(database) = test_database() else {
        return;
    };
    let starting_line = Barrier::new(3);
    let services: Vec<RunningBinary> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    starting_line.wait();
                    RunningBinary::start(&database, SECRET, &[("READERS", "1"), ("WORKERS", "1")])
                })
            })
            .collect();
        starts
            .into_iter()
            .map(|start| start.join().expect("each replica starts"))
            .collect()
    });

    let client = reqwest::Client::new();
    for service in &services {
        let ready = client.get(service.url("/health/ready")).send().await;
        assert_eq!(
            ready.expect("answered").status(),
            200,
            "each replica is ready"
        );
    }
    let recorded = psql_at(
        &database.url(),
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
    )
    .expect("schema_migrations is readable");
    let applied: Vec<Value> = services
        .iter()
        .flat_map(RunningBinary::log_events)
        .filter(|event| event["message"] == "applied a database migration")
        .collect();
    let applied_versions: Vec<String> = applied
        .iter()
        .map(|event| event["version"].to_string())
        .collect();
    assert_eq!(
        applied_versions.join(","),
        recorded,
        "every migration recorded was applied by exactly one replica: {applied:?}"
    );
    assert!(!recorded.is_empty(), "the schema was created");
}

#[test]
fn a_schema_newer_than_the_build_stops_startup_in_one_line() {
    let Some(database) = test_database() else {
        return;
    };
    database.preload(&[]);
    database
        .postgres()
        .psql("INSERT INTO schema_migrations (version, name) VALUES (100000, 'from the future')")
        .expect("a newer build's migration is recorded");

    let output = run_to_exit(database.dir(), &database.url(), &[]);

    let line = assert_refused_in_one_line(&output, APP_PASSWORD, "a newer schema");
    assert!(line.contains("schema is newer"), "{line:?}");
}
