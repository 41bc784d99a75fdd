//! The binary as users and CI see it: help, exit codes, stdout/stderr separation, the committed
//! schema.

use std::path::Path;
use std::process::{Command, Output};

fn steadfast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("STEADFAST_LOG")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn help_lists_the_subcommands() {
    let output = steadfast(&["--help"]);
    assert!(output.status.success());
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn the_shipped_experiments_validate_with_exit_zero() {
    let output = steadfast(&["validate", "experiments/"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("0 error(s)"));
}

#[test]
fn schema_matches_the_committed_file() {
    let output = steadfast(&["schema"]);
    assert!(output.status.success());
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/schema.json"),
    )
    .expect("experiments/schema.json is committed");
    assert!(
        stdout(&output) == committed,
        "experiments/schema.json drifted from the code: run `cargo run -q -- schema > experiments/schema.json`"
    );
}

#[test]
fn invalid_files_exit_two_with_placed_diagnostics_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/demo.yaml"),
    )
    .unwrap()
    .replace("podKill:", "podkill:");
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();

    let output = steadfast(&["validate", file]);
    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    assert!(out.contains(&format!("{file}:")), "{out}");
    assert!(
        out.contains("spec.faults[0].podkill: unknown field `podkill`"),
        "{out}"
    );
    assert!(out.contains("hint: did you mean `podKill`?"), "{out}");
    assert!(!out.contains("\x1b["), "NO_COLOR is respected");

    let output = steadfast(&["validate", "-o", "json", file]);
    assert_eq!(output.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json on stdout");
    assert_eq!(json["valid"], false);
    let unknown = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "spec.faults[0].podkill")
        .expect("the unknown key is reported");
    assert!(unknown["line"].as_u64().unwrap() > 1);
    assert_eq!(unknown["hint"], "did you mean `podKill`?");
}

#[test]
fn usage_errors_and_missing_paths_exit_two() {
    assert_eq!(steadfast(&["validate"]).status.code(), Some(2));
    assert_eq!(steadfast(&["no-such-command"]).status.code(), Some(2));
    let output = steadfast(&["validate", "does/not/exist.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stdout(&output).contains("no such file"),
        "{}",
        stdout(&output)
    );
}
