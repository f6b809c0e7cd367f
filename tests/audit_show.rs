//! `cancelguard audit show`: filters, the table, JSON lines, folders.

use std::path::Path;
use std::process::{Command, Output};

use cancelguard::audit::chain;

const BIN: &str = env!("CARGO_BIN_EXE_cancelguard");

const ALICE_OID: &str = "a11ce000-0000-4000-8000-000000000001";

/// Records of a small trail, in order; sealed like the writer seals them.
fn trail_lines() -> Vec<String> {
    let bodies = [
        r#""ts":"2026-12-03T09:00:00.000000Z","id":"s","event":"start""#
            .to_string(),
        format!(
            r#""ts":"2026-12-03T10:00:00.000000Z","id":"1","event":"decision","target":"req-a","caller":{{"oid":"{ALICE_OID}","upn":"alice@contoso.example"}},"decision":"allow","reason":"allowed_by_rule","rule":"admins","mode":"enforce""#
        ),
        r#""ts":"2026-12-03T10:00:00.250000Z","id":"1","event":"outcome","target":"req-a","status":204,"upstream_ms":12"#.to_string(),
        r#""ts":"2026-12-03T11:00:00.000000Z","id":"2","event":"decision","target":"req-b","caller":{"upn":"bob@contoso.example"},"decision":"deny","reason":"no_matching_rule","mode":"enforce","status":403"#.to_string(),
        r#""ts":"2026-12-04T08:00:00.000000Z","id":"3","event":"decision","target":"req-a","unverified":{"upn":"mallory@contoso.example"},"decision":"deny","reason":"token_expired","status":401"#.to_string(),
    ];
    let mut prev = chain::GENESIS.to_string();
    bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            let seq = n + 1;
            let unsealed =
                format!(r#"{{"v":1,"seq":{seq},{body},"prev":"{prev}"}}"#);
            let (line, hash) = chain::seal(unsealed.as_bytes());
            prev = hash;
            String::from_utf8(line).expect("utf8")
        })
        .collect()
}

fn write_trail(path: &Path) -> Vec<String> {
    let lines = trail_lines();
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
    lines
}

fn show(path: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["audit", "show"])
        .arg(path)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `id`s of the records shown with `--json` and `args`.
fn ids(path: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = show(path, &all);
    assert!(output.status.success(), "{:?}", output);
    out(&output)
        .lines()
        .map(|l| {
            let record: serde_json::Value =
                serde_json::from_str(l).expect("JSON line");
            record["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

#[test]
fn json_output_is_the_matching_lines_as_written() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("trail-r.jsonl");
    let lines = write_trail(&path);
    let output = show(&path, &["--json", "--decision", "deny"]);
    assert!(output.status.success());
    assert_eq!(out(&output), format!("{}\n{}\n", lines[3], lines[4]));
}

#[test]
fn filters_narrow_the_records() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("trail-r.jsonl");
    write_trail(&path);
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["s", "1", "1", "2", "3"]),
        (&["--caller", "ALICE@contoso.example"], &["1"]),
        (&["--caller", ALICE_OID], &["1"]),
        (&["--caller", "mallory@contoso.example"], &["3"]),
        (&["--target", "req-a"], &["1", "1", "3"]),
        (&["--decision", "allow"], &["1"]),
        (&["--reason", "token_expired"], &["3"]),
        (&["--event", "outcome"], &["1"]),
        (&["--since", "2026-12-03T10:00:00Z"], &["1", "1", "2", "3"]),
        (&["--since", "2026-12-03T10:00:00.1Z"], &["1", "2", "3"]),
        (&["--until", "2026-12-03T11:00:00Z"], &["s", "1", "1"]),
        (&["--since", "2026-12-04"], &["3"]),
        (&["--target", "req-a", "--decision", "deny"], &["3"]),
    ];
    for (args, expected) in cases {
        assert_eq!(ids(&path, args), *expected, "show {args:?}");
    }
}

#[test]
fn the_table_has_one_row_per_record() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("trail-r.jsonl");
    write_trail(&path);
    let output = show(&path, &["--decision", "deny"]);
    assert!(output.status.success());
    let table = out(&output);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    for column in ["TS", "EVENT", "DECISION", "REASON", "CALLER", "TARGET"] {
        assert!(rows[0].contains(column), "{}", rows[0]);
    }
    assert!(rows[0].ends_with("STATUS"), "{}", rows[0]);
    assert!(rows[1].starts_with("2026-12-03T11:00:00.000000Z decision"));
    for cell in ["deny", "no_matching_rule", "bob@contoso.example", "req-b"] {
        assert!(rows[1].contains(cell), "{}", rows[1]);
    }
    assert!(rows[1].ends_with(" 403"), "{}", rows[1]);
    assert!(rows[2].contains("mallory@contoso.example (unverified)"));
}

#[test]
fn a_folder_shows_every_replica_and_skips_what_is_not_a_record() {
    let dir = tempfile::tempdir().expect("dir");
    write_trail(&dir.path().join("trail-a-20261203T120000.000000Z.jsonl"));
    let mut text = trail_lines()[..2].join("\n");
    text.push_str("\n{\"v\":1,\"seq\":3,\"ts\n");
    std::fs::write(dir.path().join("trail-a.jsonl"), text).expect("write");
    write_trail(&dir.path().join("trail-b.jsonl"));

    let output = show(dir.path(), &["--json", "--event", "start"]);
    assert!(output.status.success());
    assert_eq!(out(&output).lines().count(), 3);
    let warning = String::from_utf8_lossy(&output.stderr);
    assert!(
        warning.contains("trail-a.jsonl:3: not an audit record"),
        "{warning}"
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_status() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("trail-r.jsonl");
    write_trail(&path);
    let output = show(&path, &["--since", "yesterday"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("yesterday"));
    let output = show(&dir.path().join("missing"), &[]);
    assert_eq!(output.status.code(), Some(2));
}
