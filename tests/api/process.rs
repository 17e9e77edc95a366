//! The binary as a process: configuration at startup and a graceful stop under load.

use std::collections::HashSet;
use std::time::Duration;

use crate::binary::{RunningBinary, command};
use crate::helpers::{message, sign_with};
use crate::store::{Store, TestDatabase, store_tests};

store_tests! {
    async a_dot_env_file_is_read_and_real_environment_variables_win,
    async sigterm_during_writes_loses_no_acknowledged_message_and_exits_zero,
    async open_reads_are_warned_about_at_startup_and_not_when_a_token_is_set,
}

#[actix_web::test]
async fn a_missing_or_empty_secret_stops_startup_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for (vars, expected) in [
        (vec![], "WEBHOOK_SECRET is required"),
        (
            vec![("WEBHOOK_SECRET", "")],
            "WEBHOOK_SECRET must not be empty",
        ),
    ] {
        let output = command(dir.path(), &vars).output().unwrap();
        assert!(!output.status.success(), "{expected}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[actix_web::test]
async fn an_unsupported_database_url_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(
        dir.path(),
        &[
            ("WEBHOOK_SECRET", "s"),
            ("DATABASE_URL", "mysql://localhost/db"),
        ],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("DATABASE_URL")
    );
}

#[actix_web::test]
async fn a_port_in_use_stops_startup_with_one_clear_line_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let url = format!("sqlite:///{}", dir.path().join("app.db").display());
    let output = command(
        dir.path(),
        &[
            ("WEBHOOK_SECRET", "s"),
            ("DATABASE_URL", &url),
            ("HOST", "127.0.0.1"),
            ("PORT", &port),
        ],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, no backtrace: {stderr}"
    );
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
}

async fn a_dot_env_file_is_read_and_real_environment_variables_win(store: Store) {
    let database = TestDatabase::new(store);
    std::fs::write(database.dir().join(".env"), "WEBHOOK_SECRET=from-file\n").unwrap();
    let client = reqwest::Client::new();
    let body =
        serde_json::to_vec(&message("m1", "+1", "+2", "2025-01-15T10:00:00Z", None)).unwrap();
    let status_for = |service: &RunningBinary, secret: &str| {
        client
            .post(service.url("/webhook"))
            .header("X-Signature", sign_with(secret, &body))
            .body(body.clone())
            .send()
    };

    let from_file = RunningBinary::start_with(&database, &[]);
    assert_eq!(
        status_for(&from_file, "from-file")
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    drop(from_file);

    let from_env = RunningBinary::start(&database, "from-env", &[]);
    assert_eq!(
        status_for(&from_env, "from-file")
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        status_for(&from_env, "from-env")
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

async fn sigterm_during_writes_loses_no_acknowledged_message_and_exits_zero(store: Store) {
    let database = TestDatabase::new(store);
    let mut service = RunningBinary::start(&database, "s3cret", &[]);
    let client = reqwest::Client::new();
    let url = service.url("/webhook");

    // 16 senders post unique messages as fast as they can until the service stops answering.
    let senders = (0..16).map(|sender| {
        let (client, url) = (client.clone(), url.clone());
        actix_web::rt::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let id = format!("s{sender}-{n}");
                let body =
                    serde_json::to_vec(&message(&id, "+1", "+2", "2025-01-15T10:00:00Z", None))
                        .unwrap();
                let sent = client
                    .post(&url)
                    .header("X-Signature", sign_with("s3cret", &body))
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().as_u16() == 200 => acknowledged.push(id),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            acknowledged
        })
    });
    let senders: Vec<_> = senders.collect();
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;

    service.signal("TERM");
    let mut acknowledged = HashSet::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    let status = service
        .wait_for_exit(Duration::from_secs(25))
        .expect("the service exits within its shutdown timeout");

    assert!(status.success(), "exit status {status:?}");
    assert!(
        acknowledged.len() > 50,
        "the load ran: {} acknowledged",
        acknowledged.len()
    );
    let stored: HashSet<String> = service
        .exported()
        .iter()
        .map(|message| message["message_id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
}

async fn open_reads_are_warned_about_at_startup_and_not_when_a_token_is_set(store: Store) {
    let warned = |service: &RunningBinary| {
        service.log_events().iter().any(|event| {
            event["level"] == "WARN"
                && event["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("API_TOKEN is not set"))
        })
    };
    let database = TestDatabase::new(store);
    let open = RunningBinary::start(&database, "secret", &[]);
    assert!(warned(&open), "{:?}", open.log_events());
    drop(open);
    let guarded = RunningBinary::start(&database, "secret", &[("API_TOKEN", "t")]);
    assert!(!warned(&guarded), "{:?}", guarded.log_events());
}
