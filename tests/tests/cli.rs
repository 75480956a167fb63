//! The host-runner as a user runs it: a child process, its exit codes, its
//! `--json` output, and the secret kept out of everything it writes.

use std::process::{Command, Output};

use nextcloud_sim::SimOptions;
use tests::{Account, PASSWORD, PASSWORD_ENV};

fn host_runner(account: &Account, args: &[&str], password: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args(args)
        .arg("--config")
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, password)
        .env("RUST_LOG", "trace")
        .output()
        .expect("host-runner runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn sync_reports_json_and_the_secret_appears_nowhere() {
    let account = Account::sample();
    let output = host_runner(&account, &["sync", "--json"], PASSWORD);
    assert!(output.status.success(), "{}", text(&output));
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(summary["mode"], "full");
    assert_eq!(summary["new"], account.sim().listing().len() as u64);
    for key in [
        "content_updated",
        "metadata_updated",
        "deleted",
        "unchanged",
        "requests",
        "duration_ms",
    ] {
        assert!(summary[key].is_u64(), "{key} missing from {summary}");
    }

    let records = host_runner(&account, &["records", "--json"], PASSWORD);
    assert!(records.status.success(), "{}", text(&records));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&records.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), account.sim().listing().len());
    for key in [
        "external_id",
        "path",
        "is_folder",
        "etag",
        "size",
        "mime_type",
        "modified",
        "parent_external_id",
        "permission",
    ] {
        assert!(lines.iter().all(|l| l.get(key).is_some()), "{key} missing");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "/Spécial #1 & 100% done/what?.txt")
    );
    assert!(
        lines[0]["modified"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC"
    );

    // At RUST_LOG=trace, no 12-character piece of the password or of the
    // encoded credential is anywhere: stdout, stderr, or any file written.
    let secret_pieces = secret_pieces(&format!("alice:{PASSWORD}"));
    assert!(text(&output).contains("DEBUG"), "debug logging is on");
    for out in [&output, &records] {
        let all = text(out);
        if let Some(piece) = secret_pieces.iter().find(|p| all.contains(p.as_str())) {
            panic!("a piece of the secret, `{piece}`, leaked into the output");
        }
    }
    for entry in std::fs::read_dir(account.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        if let Some(piece) = secret_pieces.iter().find(|p| hay.contains(p.as_str())) {
            panic!("a piece of the secret, `{piece}`, is in {}", path.display());
        }
    }
}

/// Every 12-character window of the password and of the Basic credential
/// made of `login:password`.
fn secret_pieces(login_password: &str) -> Vec<String> {
    let encoded = base64(login_password);
    let windows = |s: &str| -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        chars.windows(12).map(|w| w.iter().collect()).collect()
    };
    let mut pieces = windows(&encoded);
    pieces.extend(windows(PASSWORD));
    pieces
}

#[test]
fn a_wrong_password_costs_one_request_and_says_why() {
    let account = Account::sample();
    let output = host_runner(&account, &["sync"], "not-the-app-password");
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let requests = account.sim().requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(!requests[0].authorized);
    let message = text(&output).to_lowercase();
    assert!(message.contains("app password"), "{message}");
    assert!(message.contains("username"), "{message}");
}

#[test]
fn test_connection_reports_who_and_what() {
    let account = Account::sample();
    let output = host_runner(&account, &["test-connection", "--json"], PASSWORD);
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["user_id"], "alice");
    assert_eq!(report["display_name"], "Alice Ångström");
    assert_eq!(report["email"], "alice@example.test");
    assert!(
        report["server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("32")),
        "{report}"
    );
}

#[test]
fn a_bad_base_url_is_a_config_error() {
    let account = Account::new(SimOptions::default());
    std::fs::write(
        &account.config_path,
        "base_url = \"cloud.example.com\"\nusername = \"alice\"\ndatabase = \"x.sqlite\"\n",
    )
    .unwrap();
    let output = host_runner(&account, &["sync"], PASSWORD);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("http"), "{}", text(&output));
}

#[test]
fn the_demo_runs_end_to_end() {
    let output = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args(["demo", "--json", "--component"])
        .arg(tests::connector_wasm())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());
}

/// A proxy named by the environment would read a plain-HTTP request and the
/// credential in it: the host never hands one over.
#[test]
fn a_proxy_from_the_environment_never_sees_a_plain_http_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let account = Account::sample();
    let output = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args(["sync", "--json", "--config"])
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env("ALL_PROXY", &proxy)
        .env("all_proxy", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("host-runner runs");
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the proxy was contacted"
    );
}

/// `inspect` reads what a component asks for from its bytes: the connector
/// asks for reads only, all granted; the rogue also asks for writes, which
/// only a configuration's `grants` gives it.
#[test]
fn inspect_shows_the_capabilities_asked_for_and_granted() {
    let inspect = |component: &std::path::Path, config: Option<&std::path::Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"));
        command
            .args(["inspect", "--json", "--component"])
            .arg(component);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let output = command.output().expect("host-runner runs");
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON")
    };
    let granted = |json: &serde_json::Value| -> Vec<(String, bool)> {
        json["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["granted"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let connector = inspect(&tests::connector_wasm(), None);
    assert_eq!(connector["wit_versions"], serde_json::json!(["0.1.0"]));
    assert_eq!(connector["compatible"], true);
    assert_eq!(connector["declared"], true);
    let asked = granted(&connector);
    assert_eq!(asked.len(), 7, "{asked:?}");
    assert!(asked.iter().all(|(_, g)| *g), "{asked:?}");
    assert!(
        connector["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["level"] == "read")
    );

    let rogue = inspect(&tests::rogue_wasm(), None);
    let writes: Vec<(String, bool)> = granted(&rogue)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".write"))
        .collect();
    assert_eq!(
        writes,
        [
            ("files.write".to_string(), false),
            ("shares.write".to_string(), false)
        ]
    );
    let account = Account::with_settings(
        SimOptions::default(),
        "grants = [\"files.read\", \"files.write\"]",
    );
    let narrowed = inspect(&tests::rogue_wasm(), Some(&account.config_path));
    let granted_now: Vec<String> = granted(&narrowed)
        .into_iter()
        .filter_map(|(n, g)| g.then_some(n))
        .collect();
    assert_eq!(granted_now, ["files.read", "files.write"]);
}

/// What the connector says reaches the user, but not as terminal escapes.
#[test]
fn a_connectors_error_cannot_drive_the_terminal() {
    let account = Account::rogue("terminal-escape", "");
    let output = host_runner(&account, &["sync"], PASSWORD);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("screen cleared"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "{stderr:?}"
    );
}
