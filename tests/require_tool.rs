//! The gate on missing test tools (`support/tools.rs`): a missing tool skips loudly on a
//! developer's machine and fails the test under `CI=true` or `STEADFAST_REQUIRE_TOOLS=1`.
//!
//! The environment is process-wide, so the tests that depend on it run this binary again as a
//! child with the variables set, instead of changing them under other tests' feet.

use std::process::{Command, Output};

#[path = "support/tools.rs"]
#[allow(dead_code)]
mod tools;

const MISSING: &str = "steadfast-test-no-such-tool";

/// Runs the ignored test `name` of this binary in a child with `env` set and `CI` and
/// `STEADFAST_REQUIRE_TOOLS` otherwise removed.
fn child(name: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("CI")
        .env_remove(tools::REQUIRE_TOOLS)
        .envs(env.iter().copied());
    command.output().expect("the test binary runs again")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_missing_tool_fails_the_test_with_the_install_hint_when_tools_are_required() {
    let caught = std::panic::catch_unwind(|| tools::require_when(true, MISSING, None::<()>));
    let message = caught
        .expect_err("a missing required tool panics")
        .downcast::<String>()
        .map(|m| *m)
        .unwrap_or_default();
    assert!(message.contains(MISSING), "{message}");
    assert!(message.contains("scripts/setup"), "{message}");
}

#[test]
fn a_missing_tool_only_skips_when_tools_are_not_required() {
    assert_eq!(tools::require_when(false, MISSING, None::<()>), None);
    assert_eq!(tools::require_when(true, "present", Some(7)), Some(7));
}

#[test]
fn the_requirement_is_read_from_ci_and_steadfast_require_tools() {
    const PROBE: &str = "probe_a_missing_tool";
    for (env, required) in [
        (("CI", "true"), true),
        ((tools::REQUIRE_TOOLS, "1"), true),
        ((tools::REQUIRE_TOOLS, "0"), false),
        (("CI", "false"), false),
    ] {
        let output = child(PROBE, &[env]);
        let all = text(&output);
        assert!(output.status.success(), "{env:?}:\n{all}");
        assert!(all.contains("1 passed"), "the probe ran:\n{all}");
        assert!(
            all.contains(&format!("PROBE required={required}")),
            "{env:?}:\n{all}"
        );
        assert!(
            all.contains(MISSING) && all.contains("scripts/setup"),
            "{all}"
        );
    }
}

/// Run by the test above in a child process with the environment it sets: says whether the
/// missing tool failed the test (a panic) or was skipped.
#[test]
#[ignore = "run in a child process by the_requirement_is_read_from_ci_and_steadfast_require_tools"]
fn probe_a_missing_tool() {
    let result = std::panic::catch_unwind(|| tools::require_tool(MISSING));
    println!("PROBE required={}", result.is_err());
    if let Ok(found) = result {
        assert_eq!(found, None);
    }
}
