//! Shell completions and the man page: generated from the command line's definitions, accepted
//! by the shells, and the committed page kept in step with the code.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Every subcommand a user can type; completions must offer each.
const SUBCOMMANDS: [&str; 15] = [
    "run",
    "plan",
    "probe",
    "demo",
    "rollback",
    "halt",
    "resume",
    "schedule",
    "validate",
    "schema",
    "report",
    "gate",
    "sandbox",
    "completions",
    "man",
];

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
fn bash_completions_are_generated_and_bash_n_accepts_them() {
    let output = steadfast(&["completions", "bash"]);
    assert_eq!(output.status.code(), Some(0));
    let script = stdout(&output);
    assert!(script.contains("complete -F"), "{script}");
    for sub in SUBCOMMANDS {
        assert!(script.contains(sub), "bash completions lack `{sub}`");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steadfast.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    assert!(
        check.status.success(),
        "bash -n rejects the script: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    for (shell, marker) in [
        ("zsh", "#compdef steadfast"),
        ("fish", "complete -c steadfast"),
    ] {
        let output = steadfast(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completions lack `{sub}`");
        }
    }
}

#[test]
fn an_unknown_shell_is_refused_with_exit_2() {
    let output = steadfast(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}

#[test]
fn man_page_matches_the_committed_docs_steadfast_1() {
    let output = steadfast(&["man"]);
    assert_eq!(output.status.code(), Some(0));
    let page = stdout(&output);
    assert!(page.starts_with(".ie"), "not roff: {page}");
    assert!(page.contains(".TH steadfast 1"), "{page}");
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/steadfast.1"))
            .unwrap_or_default();
    assert!(
        page == committed,
        "docs/steadfast.1 is stale; hint: run 'make man' and commit the result"
    );
}
