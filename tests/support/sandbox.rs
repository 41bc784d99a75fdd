//! The sandbox and the real `steadfast` binary, for end-to-end tests that run experiments.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};

/// The repository root; experiment paths in tests are relative to it.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the sandbox topology with `options` and waits until its workloads are ready.
pub async fn start(options: SandboxOptions) -> Sandbox {
    let topology = Topology::load(&repo().join("experiments/sandbox/topology.yaml"))
        .expect("the sandbox topology loads");
    let sandbox = Sandbox::start(&topology, options)
        .await
        .expect("the sandbox starts");
    sandbox
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("the sandbox becomes ready");
    sandbox
}

/// Starts the sandbox on plain HTTP, writing its kubeconfig into `dir`.
pub async fn start_in(dir: &Path) -> Sandbox {
    start(SandboxOptions::new(dir)).await
}

/// A `steadfast` command in the repository, without colour, with `env` set.
pub fn command(args: &[&str], env: &[(&str, &Path)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steadfast"));
    command
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env("STEADFAST_NAMESPACE", "default")
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs `steadfast ARGS` to completion within `limit`; panics (killing it) past the limit.
pub async fn run(args: &[&str], env: &[(&str, &Path)], limit: Duration) -> Output {
    let child = command(args, env).output();
    match tokio::time::timeout(limit, child).await {
        Ok(output) => output.expect("the binary starts"),
        Err(_) => panic!("steadfast {args:?} ran longer than {limit:?}"),
    }
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn both(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
