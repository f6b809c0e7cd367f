//! The binary as an operator meets it: `check`, `run` on bad input, and
//! `audit verify`, `explain`.

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

/// A config in `dir` trusting `issuer`, allowing Permissions Management
/// administrators of the demo tenant.
fn explain_config(dir: &Path, issuer: &cancelguard::demo::Issuer) -> String {
    use cancelguard::demo::{DEMO_TENANT, PERMISSIONS_ADMIN_ROLE};
    std::fs::write(dir.join("jwks.json"), issuer.jwks_json()).expect("jwks");
    let text = format!(
        "[auth]\njwks_file = \"jwks.json\"\ntenants = [\"{DEMO_TENANT}\"]\n\n\
         [[policy.rules]]\nname = \"admins\"\neffect = \"allow\"\n\
         directory_roles = [\"{PERMISSIONS_ADMIN_ROLE}\"]\n\n\
         [audit]\nfile = \"audit.jsonl\"\n"
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

#[test]
fn explain_says_why_and_writes_nothing() {
    use cancelguard::demo::{Issuer, PERMISSIONS_ADMIN_ROLE};
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("dir");
    let issuer = Issuer::generate("k").expect("key");
    let config = explain_config(dir.path(), &issuer);
    let hour = Duration::from_secs(3600);
    let admin = issuer.sign(&Issuer::user_claims(
        "alice@contoso.example",
        "a11ce000-0000-4000-8000-000000000001",
        &[PERMISSIONS_ADMIN_ROLE],
        hour,
    ));
    let user = issuer.sign(&Issuer::user_claims(
        "bob@contoso.example",
        "b0b00000-0000-4000-8000-000000000002",
        &[],
        hour,
    ));
    let path = "/beta//permissionsManagement/scheduledPermissionsRequests('r-1')/cancelAll";

    let allowed = cancelguard(&[
        "explain", "--config", &config, "--token", &admin, "--path", path,
    ]);
    let out = String::from_utf8_lossy(&allowed.stdout);
    assert_eq!(allowed.status.code(), Some(0), "{out}{}", stderr(&allowed));
    assert!(
        out.contains("rule 'admins'") && out.contains("forwarded"),
        "{out}"
    );
    assert!(out.contains("/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/r-1/cancelAll"), "{out}");
    assert!(!out.contains(&admin), "the token is echoed");

    let denied = cancelguard(&[
        "explain", "--config", &config, "--token", &user, "--path", path,
    ]);
    let out = String::from_utf8_lossy(&denied.stdout);
    assert_eq!(denied.status.code(), Some(1), "{out}");
    assert!(
        out.contains("403") && out.contains("no_matching_rule"),
        "{out}"
    );

    let get = cancelguard(&[
        "explain", "--config", &config, "--token", &admin, "--path", path,
        "--method", "GET",
    ]);
    assert_eq!(get.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&get.stdout).contains("405"));

    let expired = cancelguard(&[
        "explain", "--config", &config, "--token", "a.b.c", "--path", path,
    ]);
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stdout).contains("401"));

    assert!(
        !dir.path().join("audit.jsonl").exists(),
        "explain wrote an audit file"
    );
    assert!(std::fs::read_dir(dir.path()).expect("dir").all(|e| {
        !e.expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with("audit")
    }));
}

#[test]
fn explain_reads_the_token_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("dir");
    let issuer = cancelguard::demo::Issuer::generate("k").expect("key");
    let config = explain_config(dir.path(), &issuer);
    let mut child = Command::new(BIN)
        .args([
            "explain", "--config", &config, "--token", "-", "--path",
            "/v1.0/me",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"x.y.z\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("not cancelAll") && out.contains("404"),
        "{out}"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn check_names_an_unreadable_tls_file() {
    let dir = tempfile::tempdir().expect("dir");
    let server =
        "tls_cert_file = \"missing.pem\"\ntls_key_file = \"missing.key\"";
    let config = write_config(dir.path(), server, "");
    let output = cancelguard(&["check", "--config", &config]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("missing.pem"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn output_to_a_closed_pipe_is_not_a_crash() {
    // As in `cancelguard check | head -0`: the reader is gone before the
    // first line is written.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/proxy.toml");
    let output = Command::new(BIN)
        .args(["check", "--config", shipped])
        .stdout(writer)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}
