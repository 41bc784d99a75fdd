//! Shared by the conformance tests: finding a third-party client (failing under `CI=true`,
//! skipping loudly otherwise), running it with a deadline, and a sandbox to point it at.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use steadfast::sandbox::{Sandbox, SandboxOptions, Topology};

/// Where the Google Cloud SDK installs its versioned kubectl binaries (`kubectl.1.27`, ...).
const KUBECTL_DIRS: &[&str] = &[
    "/usr/lib/google-cloud-sdk/bin",
    "/usr/local/bin",
    "/usr/bin",
];

/// Longest any one client command may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// The tool at `path` if it exists; otherwise the shared rule for a missing tool (fail under
/// `CI=true` or `STEADFAST_REQUIRE_TOOLS=1`, skip loudly otherwise), naming `what` and `hint`.
pub fn require_tool(what: &str, path: Option<PathBuf>, hint: &str) -> Option<PathBuf> {
    crate::shared_tools::require(&format!("{what} ({hint})"), path.filter(|p| p.exists()))
}

/// A kubectl binary: `kubectl.<minor>` from the SDK directory, or `kubectl` on the PATH.
pub fn kubectl_binary(minor: Option<&str>) -> Option<PathBuf> {
    let name = minor.map_or("kubectl".to_string(), |m| format!("kubectl.{m}"));
    KUBECTL_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(&name))
        .find(|p| p.exists())
}

/// The repository's Python with the official `kubernetes` client, if importable.
pub fn python_client() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = std::process::Command::new(&venv)
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(venv)
}

/// A fast topology: two zones, one Deployment behind a Service with a named port.
pub const TOPOLOGY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones:
  - {name: us-east-1a, nodes: 2}
  - {name: us-east-1b, nodes: 1}
timing:
  podStartupDelay: 200ms
  nodeBootDelay: 500ms
  terminationGracePeriod: 1s
  nodeMonitorGracePeriod: 5s
  toleration: 5s
  leaseRenewInterval: 500ms
  preStopDelay: 0s
deployments:
  - {name: web, namespace: shop, replicas: 3, labels: {app: web}, service: {port: 80}}
"#;

/// A started sandbox and the directory holding its kubeconfig.
pub struct Running {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
}

/// Starts [`TOPOLOGY`] and waits until it is ready.
pub async fn start() -> Running {
    let topology = Topology::parse(TOPOLOGY, "conformance topology").expect("topology parses");
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
        .await
        .expect("sandbox starts");
    sandbox
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("sandbox becomes ready");
    Running { sandbox, dir }
}

/// A Role letting the ServiceAccount `shop/reader` get and list pods in `shop`, nothing more.
pub const READER_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: shop}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: pod-reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
  - {kind: ServiceAccount, name: reader, namespace: shop}
"#;

/// [`TOPOLOGY`] with `rbac: enforce`, on HTTPS (kubectl sends bearer tokens only over TLS);
/// returns it and the kubeconfig of the ServiceAccount `shop/reader` (bound to nothing yet).
/// `None` without openssl (a failure when tools are required).
pub async fn start_with_rbac() -> Option<(Running, PathBuf)> {
    crate::shared_tools::require_tool("openssl")?;
    let mut topology = Topology::parse(TOPOLOGY, "conformance topology").expect("topology parses");
    topology.rbac = steadfast::sandbox::RbacMode::Enforce;
    let dir = tempfile::tempdir().expect("temp dir");
    let tls = crate::shared_tls::certificates(dir.path());
    let options = SandboxOptions {
        tls: Some(tls),
        ..SandboxOptions::new(dir.path())
    };
    let sandbox = Sandbox::start(&topology, options)
        .await
        .expect("sandbox starts");
    sandbox
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("sandbox becomes ready");
    let reader = sandbox
        .write_service_account_kubeconfig("shop", "reader")
        .expect("the reader kubeconfig is written");
    Some((Running { sandbox, dir }, reader))
}

/// Runs `program args` to completion within [`COMMAND_LIMIT`].
pub async fn run(program: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_remove("KUBECONFIG").kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(COMMAND_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {args:?} ran longer than {COMMAND_LIMIT:?}",
                program.display()
            )
        })
        .expect("the client starts")
}

/// A kubectl of one version bound to one sandbox, with its own discovery cache.
pub struct Kubectl {
    pub binary: PathBuf,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

/// The result of one kubectl command.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Both streams, for assertion messages.
    pub fn both(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Kubectl {
    /// kubectl `minor` (or the default one) against `sandbox`; `None` when skipped.
    pub fn new(minor: Option<&str>, sandbox: &Sandbox) -> Option<Self> {
        let what = format!(
            "kubectl{}",
            minor.map(|m| format!(" {m}")).unwrap_or_default()
        );
        let binary = require_tool(
            &what,
            kubectl_binary(minor),
            "install the Google Cloud SDK kubectl component (kubectl.<minor> binaries)",
        )?;
        Some(Self {
            binary,
            kubeconfig: sandbox.kubeconfig_path().to_path_buf(),
            cache: tempfile::tempdir().expect("temp dir"),
        })
    }

    /// kubectl `minor` (or the default one) with the kubeconfig at `kubeconfig`.
    pub fn with_kubeconfig(
        minor: Option<&str>,
        sandbox: &Sandbox,
        kubeconfig: &Path,
    ) -> Option<Self> {
        let mut k = Self::new(minor, sandbox)?;
        k.kubeconfig = kubeconfig.to_path_buf();
        Some(k)
    }

    /// A scratch directory for manifests.
    pub fn scratch(&self) -> &Path {
        self.cache.path()
    }

    /// `kubectl args` bound to the sandbox, not started (for long-running commands).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        cmd
    }

    /// Runs `kubectl args`, whatever its exit code.
    pub async fn run(&self, args: &[&str]) -> Outcome {
        let output = self.command(args).output();
        let out = tokio::time::timeout(COMMAND_LIMIT, output)
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} ran longer than {COMMAND_LIMIT:?}"))
            .expect("kubectl starts");
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `kubectl args`, asserting exit 0; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, Some(0), "kubectl {args:?}: {}", out.both());
        out.stdout
    }

    /// Writes `yaml` to a file in the scratch directory and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let path = self.cache.path().join(name);
        std::fs::write(&path, yaml).expect("manifest written");
        path.to_string_lossy().into_owned()
    }
}

/// Polls `check` every 100 ms until it returns `Some` or `limit` passes (then panics).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
