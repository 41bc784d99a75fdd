//! The external tools tests start (moto, Prometheus, promtool, Chromium, openssl, the `.venv`
//! with helm-python-sdk, kubernetes-validate and junitparser), and what a missing one means.
//!
//! On a developer's machine a test whose tool is missing says so on stderr and returns, so the
//! rest of the suite still runs. Under `CI=true` or `STEADFAST_REQUIRE_TOOLS=1` (set by
//! `make check`, `make test` and `.ci/run`) it fails instead: a green CI run means every test
//! really ran.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The variable that makes a missing tool fail its test outside CI too.
pub const REQUIRE_TOOLS: &str = "STEADFAST_REQUIRE_TOOLS";

/// Whether a missing tool fails the test: `CI=true` or `STEADFAST_REQUIRE_TOOLS=1`.
pub fn tools_required() -> bool {
    let set = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    set("CI", "true") || set(REQUIRE_TOOLS, "1")
}

/// `found`, the result of looking `tool` up; when it is `None`, says on stderr that the test
/// did not run and returns `None`, or panics when tools are required.
///
/// # Panics
/// When `tool` is missing and [`tools_required`].
pub fn require<T>(tool: &str, found: Option<T>) -> Option<T> {
    require_when(tools_required(), tool, found)
}

/// [`require`] with the requirement given, so it can be tested without touching the
/// environment.
///
/// # Panics
/// When `tool` is missing and `required`.
pub fn require_when<T>(required: bool, tool: &str, found: Option<T>) -> Option<T> {
    if found.is_some() {
        return found;
    }
    let missing = format!("{tool} is not installed\nhint: run scripts/setup to install it");
    assert!(
        !required,
        "{missing} (a missing tool fails the test under CI=true or {REQUIRE_TOOLS}=1)"
    );
    // To the descriptor itself: the harness captures `eprintln!` of passing tests, and a test
    // that did not run must show in every log.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n!!! SKIPPED: {missing}; this test did not run !!!\n"
    );
    None
}

/// The executable `name` in the project's `.venv/bin`, `/usr/bin` or on `PATH`, in that
/// order, or `None` (after saying so, or panicking when tools are required).
///
/// # Panics
/// When it is missing and [`tools_required`].
pub fn require_tool(name: &str) -> Option<PathBuf> {
    require(name, find_tool(name))
}

/// The executable `name` in the project's `.venv/bin`, `/usr/bin` or on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
    let path = std::env::var_os("PATH");
    [venv, PathBuf::from("/usr/bin")]
        .into_iter()
        .chain(path.iter().flat_map(std::env::split_paths))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The project's `.venv` Python when it can import every one of `modules` (named `what` in
/// messages), or `None` (after saying so, or panicking when tools are required).
///
/// # Panics
/// When it is missing or lacks a module and [`tools_required`].
pub fn require_venv_python(what: &str, modules: &[&str]) -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let imports = format!("import {}", modules.join(", "));
    let usable = python.is_file()
        && std::process::Command::new(&python)
            .args(["-c", &imports])
            .output()
            .is_ok_and(|o| o.status.success());
    require(
        &format!("{what} (in .venv: {})", python.display()),
        usable.then_some(python),
    )
}
