//! The binary as an operator meets it: `check`, `run` on bad input, and
//! `audit verify`.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cancelguard");

fn cancelguard(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CANCELGUARD_CONFIG")
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A minimal valid config in `dir` with `extra` appended to `[auth]`.
fn write_config(dir: &Path, server: &str, auth_extra: &str) -> String {
    std::fs::write(
        dir.join("jwks.json"),
        cancelguard::demo::Issuer::generate("k")
            .expect("key")
            .jwks_json(),
    )
    .expect("jwks");
    let text = format!(
        "[server]\n{server}\n\n[auth]\njwks_file = \"jwks.json\"\ntenants = [\"t\"]\n{auth_extra}\n\n\
         [[policy.rules]]\nname = \"a\"\neffect = \"allow\"\nusers = [\"u\"]\n\n\
         [audit]\nfile = \"audit.jsonl\"\n"
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

#[test]
fn check_accepts_the_shipped_config() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/proxy.toml");
    let output = cancelguard(&["check", "--config", shipped]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(stdout.contains("2 rules"), "{stdout}");
}

#[test]
fn check_names_file_and_key_of_a_bad_value() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "", "leeway = \"10m\"");
    let output = cancelguard(&["check", "--config", &config]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("proxy.toml") && err.contains("auth.leeway"),
        "{err}"
    );
}

#[test]
fn check_refuses_unknown_keys_and_hmac() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "", "audiance = [\"x\"]");
    let output = cancelguard(&["check", "--config", &config]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("audiance"), "{}", stderr(&output));

    let config = write_config(dir.path(), "", "algorithms = [\"HS256\"]");
    let output = cancelguard(&["check", "--config", &config]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("auth.algorithms"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn environment_overrides_a_key() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "", "");
    let output = Command::new(BIN)
        .args(["check", "--config", &config])
        .env("CANCELGUARD__AUTH__LEEWAY", "1h")
        .output()
        .expect("runs");
    assert!(
        !output.status.success(),
        "a 1h leeway from the environment must be refused"
    );
    assert!(
        stderr(&output).contains("auth.leeway"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_with_a_missing_key_file_fails_in_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(
        dir.path(),
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"",
        "",
    );
    std::fs::remove_file(dir.path().join("jwks.json")).expect("remove");
    let output = cancelguard(&["run", "--config", &config]);
    assert!(!output.status.success());
    let err = stderr(&output);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("cancelguard: ") && last.contains("jwks.json"),
        "{err}"
    );
}

#[test]
fn run_on_a_port_in_use_fails_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let server = format!("listen = \"{addr}\"\nadmin_listen = \"127.0.0.1:0\"");
    let config = write_config(dir.path(), &server, "");
    let output = cancelguard(&["run", "--config", &config]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[test]
fn audit_verify_reports_intact_tampered_and_unreadable() {
    let dir = tempfile::tempdir().expect("dir");
    let trail = dir.path().join("trail.jsonl");
    let lines: Vec<String> = {
        let mut prev = cancelguard::audit::chain::GENESIS.to_string();
        (1..=3)
            .map(|seq| {
                let unsealed = format!(
                    r#"{{"v":1,"seq":{seq},"event":"decision","decision":"deny","prev":"{prev}"}}"#
                );
                let (line, hash) = cancelguard::audit::chain::seal(unsealed.as_bytes());
                prev = hash;
                String::from_utf8(line).expect("utf8")
            })
            .collect()
    };
    std::fs::write(&trail, lines.join("\n") + "\n").expect("write");
    let path = trail.display().to_string();
    let output = cancelguard(&["audit", "verify", &path]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let tampered = lines.join("\n").replacen("\"deny\"", "\"allow\"", 2) + "\n";
    std::fs::write(&trail, tampered).expect("write");
    let output = cancelguard(&["audit", "verify", &path]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(":1:") && stdout.contains("modified"),
        "{stdout}"
    );

    let deleted = format!("{}\n{}\n", lines[0], lines[2]);
    std::fs::write(&trail, deleted).expect("write");
    let output = cancelguard(&["audit", "verify", &path]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains(":2:"));

    let output = cancelguard(&["audit", "verify", "/nonexistent/trail.jsonl"]);
    assert_eq!(output.status.code(), Some(2));
}
