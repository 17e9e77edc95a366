//! The binary's other commands: `sign`, `healthcheck`, `--help`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::binary::{BINARY, RunningBinary, command};
use crate::store::{Store, TestDatabase, store_tests};

store_tests! {
    async a_body_signed_by_the_sign_command_is_accepted,
    async healthcheck_exits_zero_only_while_the_service_is_ready,
}

fn sign(dir: &std::path::Path, args: &[&str], secret: &str, body: &[u8]) -> (bool, String) {
    let mut child = command(dir, &[("WEBHOOK_SECRET", secret)])
        .args(["sign"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[actix_web::test]
async fn sign_refuses_an_empty_secret_as_the_service_does() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path(), &[("WEBHOOK_SECRET", "")])
        .arg("sign")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("WEBHOOK_SECRET must not be empty"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn sign_prints_the_same_hmac_as_openssl() {
    let dir = tempfile::tempdir().unwrap();
    // printf '%s' 'hello' | openssl dgst -sha256 -hmac testsecret
    let (ok, out) = sign(dir.path(), &[], "testsecret", b"hello");
    assert!(ok);
    assert_eq!(
        out,
        "a42c77dfc9f228485b5ba4238cb5d46c79c16537cd02834fe7c127ba0e0bb987\n"
    );
    // printf '%s' '1700000000.hello' | openssl dgst -sha256 -hmac testsecret
    let (ok, out) = sign(
        dir.path(),
        &["--timestamp", "1700000000"],
        "testsecret",
        b"hello",
    );
    assert!(ok);
    let expected = crate::helpers::sign_with("testsecret", b"1700000000.hello");
    assert_eq!(out.trim_end(), expected);
}

async fn a_body_signed_by_the_sign_command_is_accepted(store: Store) {
    let database = TestDatabase::new(store);
    let service = RunningBinary::start(&database, "cli-secret", &[]);
    let body = br#"{"message_id":"cli-1","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z"}"#;
    let (_, signature) = sign(database.dir(), &[], "cli-secret", body);
    let response = reqwest::Client::new()
        .post(service.url("/webhook"))
        .header("X-Signature", signature.trim_end())
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

async fn healthcheck_exits_zero_only_while_the_service_is_ready(store: Store) {
    let database = TestDatabase::new(store);
    let service = RunningBinary::start(&database, "s", &[("HEALTH_PROBE_INTERVAL_MS", "100")]);
    let port = service.port.to_string();
    let healthcheck = || {
        command(database.dir(), &[("HOST", "0.0.0.0"), ("PORT", &port)])
            .arg("healthcheck")
            .output()
            .unwrap()
    };
    assert!(healthcheck().status.success(), "ready service");

    let _away = database.take_away();
    let mut unready = healthcheck();
    for _ in 0..40 {
        if !unready.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        unready = healthcheck();
    }
    assert!(!unready.status.success(), "unready service");
    assert!(String::from_utf8(unready.stderr).unwrap().contains("503"));

    drop(service);
    let nothing = healthcheck();
    assert!(!nothing.status.success(), "nothing listening");
}

#[actix_web::test]
async fn help_lists_the_commands_and_every_setting() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = help.lines().collect();
    for command in ["serve", "healthcheck", "export", "import", "sign"] {
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with(&format!("  {command} "))),
            "a `{command}` line under Commands:\n{help}"
        );
    }
    for setting in webhook_processor::config::SETTINGS {
        let line = lines
            .iter()
            .find(|line| line.trim_start().starts_with(&format!("{} ", setting.name)))
            .unwrap_or_else(|| panic!("a line for {}:\n{help}", setting.name));
        assert!(
            line.ends_with(&format!("[default: {}]", setting.default)),
            "{} shows its own default: {line}",
            setting.name
        );
    }
}
