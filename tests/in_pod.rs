//! steadfast as it runs in a pod: no kubeconfig, `KUBERNETES_SERVICE_HOST`/`PORT` in the
//! environment, and the service-account token, CA and namespace under
//! `/var/run/secrets/kubernetes.io/serviceaccount/`. The sandbox serves its API over TLS with a
//! certificate from a test CA and refuses requests without the token, as a real API server does.
//!
//! kube-rs reads the service-account files from fixed paths, so the in-pod test writes them
//! there only where that is harmless: as root, when the directory does not exist yet (a
//! disposable CI machine or container, never a real pod), removing it afterwards. Elsewhere it
//! says so on stderr and returns. The certificates come from the `openssl` command line.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use steadfast::infra::kube::access::ApiAccess;
use steadfast::sandbox::{Sandbox, SandboxOptions, SandboxTls};
use support::sandbox::{both, repo};

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const SECRETS_ROOT: &str = "/var/run/secrets";
const TOKEN: &str = "steadfast-test-service-account-token";

fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`; `None` (after saying
/// so, or a failure when tools are required) without openssl.
fn certificates(dir: &Path) -> Option<SandboxTls> {
    support::tools::require_tool("openssl")?;
    Some(support::tls::certificates(dir))
}

async fn secure_sandbox(dir: &Path, tls: SandboxTls) -> Sandbox {
    support::sandbox::start(SandboxOptions {
        tls: Some(tls),
        bearer_token: Some(TOKEN.into()),
        ..SandboxOptions::new(dir)
    })
    .await
}

/// The service-account files, removed (with every directory created for them) on drop.
struct ServiceAccountFiles {
    created: PathBuf,
}

impl ServiceAccountFiles {
    /// Writes token, CA and namespace where kube-rs reads them, if that is harmless here.
    fn install(ca: &Path) -> Result<Self, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("needs root to write /var/run/secrets".into());
        }
        if Path::new(SECRETS_ROOT).exists() {
            return Err(format!(
                "{SECRETS_ROOT} exists (a real pod, or another test): not touching it"
            ));
        }
        std::fs::create_dir_all(SERVICE_ACCOUNT_DIR).map_err(|e| e.to_string())?;
        let files = Self {
            created: PathBuf::from(SECRETS_ROOT),
        };
        let dir = Path::new(SERVICE_ACCOUNT_DIR);
        std::fs::write(dir.join("token"), TOKEN).map_err(|e| e.to_string())?;
        std::fs::copy(ca, dir.join("ca.crt")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("namespace"), "default").map_err(|e| e.to_string())?;
        Ok(files)
    }
}

impl Drop for ServiceAccountFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.created);
    }
}

/// The TLS listener and the token check are real: a client with the kubeconfig's CA and token
/// lists nodes, the same client without the token is refused with 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_serves_tls_and_refuses_requests_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tls) = certificates(dir.path()) else {
        return;
    };
    let sandbox = secure_sandbox(dir.path(), tls).await;
    assert!(sandbox.api_url().starts_with("https://127.0.0.1:"));
    let kubeconfig = kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> =
        kube::Api::all(kube::Client::try_from(config.clone()).unwrap());
    let listed = tokio::time::timeout(Duration::from_secs(30), nodes.list(&Default::default()))
        .await
        .expect("the API answers")
        .expect("listing with the token works");
    assert_eq!(listed.items.len(), sandbox.node_names().len());

    let mut anonymous = config;
    anonymous.auth_info = Default::default();
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> =
        kube::Api::all(kube::Client::try_from(anonymous).unwrap());
    let refused = tokio::time::timeout(Duration::from_secs(30), nodes.list(&Default::default()))
        .await
        .expect("the API answers");
    match refused {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
        other => panic!("expected 401 without the token, got {other:?}"),
    }
    sandbox.shutdown().await;
}

/// `steadfast run` with no kubeconfig and no flags, only what a pod has, runs an experiment
/// end to end over TLS with the service-account token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_in_a_pod_uses_the_service_account_and_runs_an_experiment() {
    const TEST: &str = "run_in_a_pod_uses_the_service_account_and_runs_an_experiment";
    let dir = tempfile::tempdir().unwrap();
    let Some(tls) = certificates(dir.path()) else {
        return;
    };
    let ca = tls.ca.clone();
    let files = match ServiceAccountFiles::install(&ca) {
        Ok(files) => files,
        Err(why) => {
            skip(TEST, &why);
            return;
        }
    };
    let sandbox = secure_sandbox(dir.path(), tls).await;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steadfast"));
    command
        .args(["run", "experiments/sandbox/pod-kill.yaml", "--seed", "3"])
        .current_dir(repo())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // No ~/.kube/config to find: the in-cluster configuration is the only one.
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env(
            "KUBERNETES_SERVICE_PORT",
            sandbox.api_addr().port().to_string(),
        )
        .env("STEADFAST_JOURNAL", dir.path().join("journal.jsonl"))
        .env("STEADFAST_REPORTS_DIR", dir.path().join("reports"))
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the run ends within 180 s")
        .expect("the binary starts");
    drop(files);
    assert!(
        !Path::new(SECRETS_ROOT).exists(),
        "the service-account files are removed"
    );
    // 0 or 1: the experiment ran, rolled back and reported; the verdict is not the point here.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        both(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("report: "), "{}", both(&output));
    let used = sandbox.api_accesses();
    for (verb, group, resource) in [
        ("delete", "", "pods"),
        ("get", "coordination.k8s.io", "leases"),
        ("get", "", "configmaps"),
    ] {
        let access = ApiAccess {
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
        };
        assert!(
            used.contains(&access),
            "{access} not made over TLS: {used:?}"
        );
    }
    sandbox.shutdown().await;
}
