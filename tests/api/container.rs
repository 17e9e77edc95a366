//! The container contract: the binary run the way `Dockerfile` and `k8s/` (its SQLite variant)
//! run it.
//!
//! The image runs `webhook-processor serve` as the unprivileged user 10001, with the
//! environment of its `ENV` line (`DATABASE_URL=sqlite:////data/app.db`, `HOST=0.0.0.0`,
//! `PORT=8000`, ...) and, on Kubernetes, the ConfigMap's values on top (the base's, then the
//! SQLite variant's); only `/data` (owned by that user) is writable. Its health check is
//! `webhook-processor healthcheck`, and a stop is SIGTERM. This test reads those settings from
//! the deployment files themselves and runs the compiled binary with them, moved into a
//! temporary folder: `/data` becomes `<tmp>/data`, and `PORT` a free port, since 8000 may be
//! taken. As root it drops to `nobody` with `setpriv`
//! (user 10001 may not exist here, and any unprivileged user shows the same thing); as another
//! user it runs as that user, already unprivileged.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::binary::{free_port, prefixed_command, running_as_root, unprivileged_prefix};
use crate::helpers::{message, sign_with};

const SECRET: &str = "container-secret";

fn repository_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The variables of the Dockerfile's `ENV` instructions (`KEY=VALUE` pairs, `\` continued).
fn image_environment(dockerfile: &str) -> BTreeMap<String, String> {
    let joined = dockerfile.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ENV "))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.trim_matches('"').to_owned()))
        .collect()
}

/// The entries under the first `data:` key of `yaml`, as the pod's environment receives them:
/// those of a ConfigMap, or of the ConfigMap patch inlined in a kustomization.
fn configmap_environment(yaml: &str) -> BTreeMap<String, String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut lines = yaml.lines().skip_while(|line| line.trim() != "data:");
    let data_indent = lines.next().map_or(0, indent);
    lines
        .take_while(|line| indent(line) > data_indent || line.trim().is_empty())
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.trim().split_once(": "))
        .map(|(key, value)| (key.to_owned(), value.trim().trim_matches('"').to_owned()))
        .collect()
}

/// The `setpriv` prefix that runs a command as `nobody`; empty when this process is not root
/// (it is then unprivileged already); `Err` when root cannot drop privileges here.
fn image_user_prefix() -> Result<Vec<&'static str>, String> {
    if !running_as_root() {
        return Ok(Vec::new());
    }
    unprivileged_prefix()
}

fn command(prefix: &[&str], dir: &Path, env: &BTreeMap<String, String>, args: &[&str]) -> Command {
    let mut command = prefixed_command(prefix, dir, env);
    command.args(args);
    command
}

async fn status_of(client: &reqwest::Client, url: &str) -> Option<u16> {
    let response = client.get(url).send().await.ok()?;
    Some(response.status().as_u16())
}

#[actix_web::test]
async fn the_binary_runs_as_the_image_runs_it_unprivileged_with_absolute_paths() {
    let prefix = match image_user_prefix() {
        Ok(prefix) => prefix,
        Err(why) => {
            crate::binary::skip(
                "container contract",
                &format!("cannot drop privileges: {why}"),
            );
            return;
        }
    };

    // Arrange: the image's settings, moved into a temporary folder. The folder itself stays
    // the test's (the unprivileged service cannot write there, as it cannot write the image's
    // read-only root filesystem); only data/ is the service user's, like /data.
    let dockerfile = repository_file("Dockerfile");
    assert!(
        dockerfile.contains("USER 10001:10001"),
        "the image runs as user 10001"
    );
    assert!(
        dockerfile.contains(r#"CMD ["serve"]"#),
        "the image runs `serve`"
    );
    let mut env = image_environment(&dockerfile);
    env.extend(configmap_environment(&repository_file(
        "k8s/base/configmap.yaml",
    )));
    env.extend(configmap_environment(&repository_file(
        "k8s/sqlite/kustomization.yaml",
    )));
    assert_eq!(env["DATABASE_URL"], "sqlite:////data/app.db", "{env:?}");
    assert_eq!(env["HOST"], "0.0.0.0");
    assert_eq!(env["PORT"], "8000");

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    if !prefix.is_empty() {
        let chown = Command::new("chown")
            .arg("nobody:nogroup")
            .arg(&data)
            .status()
            .expect("chown runs");
        assert!(chown.success(), "data/ is given to nobody");
    }
    let port = free_port();
    let database_url = env["DATABASE_URL"].replace("////data/", &format!("///{}/", data.display()));
    assert!(
        database_url.starts_with("sqlite:////"),
        "an absolute path: {database_url}"
    );
    env.insert("DATABASE_URL".into(), database_url);
    env.insert("PORT".into(), port.to_string());
    env.insert("WEBHOOK_SECRET".into(), SECRET.into());
    let before: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();

    // Act: start it as the image does, and probe it as Kubernetes does.
    let mut service = command(&prefix, root, &env, &["serve"])
        .spawn()
        .expect("the service starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    let stdout = service.stdout.take().unwrap();
    let collected = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = false;
    while Instant::now() < deadline && !ready {
        ready = status_of(&client, &format!("{base}/health/ready")).await == Some(200);
        if !ready {
            if let Some(status) = service.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut service.stderr.take().unwrap(), &mut stderr)
                    .unwrap();
                panic!("the service exited ({status}): {stderr}");
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        ready,
        "/health/ready answers 200 within 30 s: {:?}",
        log.lock().unwrap()
    );
    assert_eq!(
        status_of(&client, &format!("{base}/health/live")).await,
        Some(200)
    );

    let body = serde_json::to_vec(&message(
        "c1",
        "+14155550100",
        "+919876543210",
        "2025-01-15T10:00:00Z",
        Some("hi"),
    ))
    .unwrap();
    let stored = client
        .post(format!("{base}/webhook"))
        .header("X-Signature", sign_with(SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status().as_u16(), 200, "a signed message is stored");
    let page: serde_json::Value = client
        .get(format!("{base}/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1, "{page}");

    let healthcheck = command(&prefix, root, &env, &["healthcheck"])
        .output()
        .unwrap();
    assert!(
        healthcheck.status.success(),
        "`webhook-processor healthcheck` exits 0: {}",
        String::from_utf8_lossy(&healthcheck.stderr)
    );

    let term = Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(25);
    let exit = loop {
        if let Some(status) = service.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = service.kill();
            let _ = service.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    // Assert: a clean stop, the data where the image keeps it, nothing written elsewhere.
    let exit = exit.expect("SIGTERM stops the service within its shutdown timeout");
    assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
    let after_stop = command(&prefix, root, &env, &["healthcheck", "--timeout-secs", "1"])
        .output()
        .unwrap();
    assert!(
        !after_stop.status.success(),
        "healthcheck fails once the service is gone"
    );
    let after: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "the service writes nothing outside data/");
    let db = rusqlite::Connection::open(data.join("app.db")).unwrap();
    let count: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE message_id = 'c1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 1, "the message is in <data>/app.db");
    if !prefix.is_empty() {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(data.join("app.db")).unwrap().uid();
        assert_ne!(
            owner, 0,
            "the database belongs to the service user, not root"
        );
    }
}

#[test]
fn the_deployment_files_settings_are_read_as_the_runtime_reads_them() {
    let image = image_environment(
        "FROM x\nENV A=sqlite:////data/app.db \\\n    B=0.0.0.0 \\\n    C=8000\nUSER 1\n",
    );
    assert_eq!(image["A"], "sqlite:////data/app.db");
    assert_eq!(image["C"], "8000");
    let configmap = configmap_environment(
        "kind: ConfigMap\ndata:\n  # a comment\n  PORT: \"8000\"\n  HOST: 0.0.0.0\nother: x\n",
    );
    assert_eq!(configmap.len(), 2, "{configmap:?}");
    assert_eq!(configmap["PORT"], "8000");
    let patched = configmap_environment(
        "patches:\n  - patch: |-\n      kind: ConfigMap\n      data:\n        # why\n        \
         DATABASE_URL: sqlite:////data/app.db\n\n        SHUTDOWN_DELAY_SECS: \"0\"\n\n\
         # next\nimages:\n  - name: x\n",
    );
    assert_eq!(patched.len(), 2, "{patched:?}");
    assert_eq!(patched["SHUTDOWN_DELAY_SECS"], "0");
}
