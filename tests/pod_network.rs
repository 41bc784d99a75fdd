//! Pod network faults on the sandbox: the `pods/ephemeralcontainers` subresource, the kubelet
//! running the fault's tc script against the pod's backend, and real `steadfast run`s of
//! `podNetworkLatency` and `podNetworkLoss` measured by per-endpoint probes in report.json;
//! and the Pod Security refusal before anything is injected.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::sandbox::{both, run, start_in};

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(v) = check().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn ephemeral(name: &str, script: &str) -> Value {
    json!({"spec": {"ephemeralContainers": [{
        "name": name, "image": "nicolaka/netshoot:v0.13",
        "command": ["sh", "-c", script],
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
    }]}})
}

fn ephemeral_state(pod: &Pod, name: &str) -> Option<Value> {
    let statuses = pod.status.as_ref()?.ephemeral_container_statuses.as_ref()?;
    let s = statuses.iter().find(|s| s.name == name)?;
    serde_json::to_value(s.state.as_ref()?).ok()
}

/// How long one GET of `url` takes on a fresh connection, and whether it answered 200.
async fn time_get(url: &str) -> (Duration, bool) {
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let started = Instant::now();
    let uri: hyper::Uri = url.parse().unwrap();
    let ok = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .is_ok_and(|r| r.is_ok_and(|r| r.status().is_success()));
    (started.elapsed(), ok)
}

async fn kube_client(sandbox: &steadfast::sandbox::Sandbox) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(sandbox.kubeconfig_path()).expect("kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig loads");
    kube::Client::try_from(config).expect("client builds")
}

fn backend_url(pod: &Pod) -> String {
    let port = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("sandbox.steadfast.dev/backend-port"))
        .expect("a backend port");
    format!("http://127.0.0.1:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_containers_are_added_only_through_their_subresource_and_run_the_tc_script() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let client = kube_client(&sandbox).await;
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let pod = listed.items[0].clone();
    let name = pod.metadata.name.clone().unwrap();
    let url = backend_url(&pod);

    // A plain update that adds an ephemeral container is refused, as upstream.
    let mut sneaky = pod.clone();
    sneaky.spec.as_mut().unwrap().ephemeral_containers =
        Some(serde_json::from_value(json!([{"name": "x", "image": "busybox"}])).unwrap());
    let refused = pods
        .replace(&name, &PostParams::default(), &sneaky)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 422),
        "{refused:?}"
    );

    // Through the subresource: a 300 ms delay for 2 s, then the script removes it itself.
    let (before, _) = time_get(&url).await;
    let added = pods
        .patch_ephemeral_containers(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(ephemeral(
                "delay",
                "tc qdisc add dev eth0 root netem delay 300ms 0ms 0%; sleep 2; tc qdisc del dev eth0 root",
            )),
        )
        .await
        .expect("the subresource accepts it");
    assert_eq!(
        added.spec.unwrap().ephemeral_containers.unwrap()[0].name,
        "delay"
    );
    let running = eventually(Duration::from_secs(2), || async {
        let p = pods.get(&name).await.ok()?;
        ephemeral_state(&p, "delay").filter(|s| s.get("running").is_some())
    })
    .await;
    assert!(running.is_some(), "reported running");
    let (slow, ok) = time_get(&url).await;
    assert!(ok);
    assert!(
        slow >= Duration::from_millis(300) && slow < before + Duration::from_millis(600),
        "{slow:?} (before {before:?})"
    );
    // The same name again is a duplicate.
    let duplicate = pods
        .patch_ephemeral_containers(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(ephemeral("delay", "sleep 1")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&duplicate, kube::Error::Api(s) if s.code == 422),
        "{duplicate:?}"
    );
    let terminated = eventually(Duration::from_secs(5), || async {
        let p = pods.get(&name).await.ok()?;
        ephemeral_state(&p, "delay").and_then(|s| s.get("terminated").cloned())
    })
    .await
    .expect("terminated after its window");
    assert_eq!(terminated["exitCode"], json!(0), "{terminated}");
    let (after, _) = time_get(&url).await;
    assert!(after < Duration::from_millis(250), "rule gone: {after:?}");

    // A command the sandbox cannot read fails the container, never the sandbox.
    pods.patch_ephemeral_containers(
        &name,
        &PatchParams::default(),
        &Patch::Strategic(ephemeral(
            "bad",
            "tc qdisc add dev eth0 root netem rate 1mbit",
        )),
    )
    .await
    .expect("accepted");
    let failed = eventually(Duration::from_secs(3), || async {
        let p = pods.get(&name).await.ok()?;
        ephemeral_state(&p, "bad").and_then(|s| s.get("terminated").cloned())
    })
    .await
    .expect("terminated");
    assert_eq!(failed["exitCode"], json!(1), "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("netem rate"),
        "{failed}"
    );

    // A removal container ends a rule before its window.
    for (container, script) in [
        (
            "hold",
            "tc qdisc add dev eth0 root netem delay 300ms; sleep 60; tc qdisc del dev eth0 root",
        ),
        ("hold-undo", "tc qdisc del dev eth0 root"),
    ] {
        pods.patch_ephemeral_containers(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(ephemeral(container, script)),
        )
        .await
        .expect("accepted");
    }
    let removed = eventually(Duration::from_secs(3), || async {
        let p = pods.get(&name).await.ok()?;
        ephemeral_state(&p, "hold-undo").and_then(|s| s.get("terminated").cloned())
    })
    .await
    .expect("the removal ran");
    assert_eq!(removed["exitCode"], json!(0), "{removed}");
    let (after_removal, _) = time_get(&url).await;
    assert!(
        after_removal < Duration::from_millis(250),
        "{after_removal:?}"
    );
    sandbox.shutdown().await;
}

fn report_of(dir: &Path) -> Value {
    fn find(dir: &Path) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if let Some(found) = find(&path) {
                    return Some(found);
                }
            } else if path.file_name().is_some_and(|n| n == "report.json") {
                return Some(path);
            }
        }
        None
    }
    let path = find(dir).expect("a report.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn probe<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == json!(name))
        .unwrap_or_else(|| panic!("probe {name}"))
}

/// The pods a fault of the report acted on (names without namespace).
fn targets(report: &Value) -> Vec<String> {
    report["faults"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["effect"] == json!("applied"))
        .map(|t| {
            let n = t["name"].as_str().unwrap();
            n.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}

fn endpoint_probes(report: &Value) -> Vec<(String, &Value)> {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            name.strip_prefix("web@").map(|pod| (pod.to_owned(), p))
        })
        .collect()
}

async fn run_example(file: &str, dir: &Path, kubeconfig: &Path) -> (std::process::Output, Value) {
    let reports = dir.join("reports");
    let journal = dir.join("journal.jsonl");
    let output = run(
        &[
            "run",
            file,
            "--report-dir",
            reports.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--seed",
            "7",
        ],
        &[("KUBECONFIG", kubeconfig)],
        Duration::from_secs(180),
    )
    .await;
    let report = report_of(&reports);
    (output, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_on_two_of_six_web_pods_raises_only_their_p50_by_200ms() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let (output, report) = run_example(
        "experiments/sandbox/pod-network-latency.yaml",
        dir.path(),
        sandbox.kubeconfig_path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let slowed = targets(&report);
    assert_eq!(slowed.len(), 2, "{}", report["faults"]);
    let endpoints = endpoint_probes(&report);
    assert_eq!(endpoints.len(), 6);
    let window = &report["faults"][0]["window"];
    let (start, end) = (
        window["start"].as_f64().unwrap(),
        window["end"].as_f64().unwrap(),
    );
    for (pod, p) in &endpoints {
        let p50 = |w: &str| p["windows"][w]["latencyMs"]["p50"].as_f64().unwrap();
        let rise = p50("during") - p50("before");
        eprintln!(
            "{pod}: p50 before {:.1} ms, during {:.1} ms, after {:.1} ms (rise {rise:.1} ms)",
            p50("before"),
            p50("during"),
            p50("after")
        );
        if slowed.contains(pod) {
            assert!((180.0..=220.0).contains(&rise), "{pod}: +{rise} ms");
        } else {
            assert!(rise.abs() < 20.0, "{pod}: +{rise} ms");
        }
        // After the window, every second's p50 is back within 1 s of its end.
        for point in p["series"].as_array().unwrap() {
            let t = point["t"].as_f64().unwrap();
            if t >= end + 1.0
                && let Some(p50) = point["p50Ms"].as_f64()
            {
                assert!(p50 < p50_before(p) + 20.0, "{pod} at {t:.1}s: {p50} ms");
            }
        }
        assert!(start < end);
    }
    let service = probe(&report, "web");
    let p99 = |w: &str| service["windows"][w]["latencyMs"]["p99"].as_f64().unwrap();
    eprintln!(
        "Service p99 before {:.1} ms, during {:.1} ms",
        p99("before"),
        p99("during")
    );
    assert!(p99("during") > p99("before") + 150.0);
    sandbox.shutdown().await;
}

fn p50_before(p: &Value) -> f64 {
    p["windows"]["before"]["latencyMs"]["p50"].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_of_30_percent_leaves_its_pod_70_percent_of_its_requests() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let (output, report) = run_example(
        "experiments/sandbox/pod-network-loss.yaml",
        dir.path(),
        sandbox.kubeconfig_path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let lossy = targets(&report);
    assert_eq!(lossy.len(), 1);
    for (pod, p) in endpoint_probes(&report) {
        let during = &p["windows"]["during"];
        let attempts = during["attempts"].as_u64().unwrap();
        let ratio = during["successes"].as_f64().unwrap() / attempts as f64;
        eprintln!("{pod}: {ratio:.3} of {attempts} attempts succeeded during the fault");
        if pod == lossy[0] {
            assert!(attempts >= 2000, "{attempts}");
            assert!((0.65..=0.75).contains(&ratio), "{ratio}");
        } else {
            assert!(ratio >= 0.99, "{pod}: {ratio}");
        }
    }
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_namespace_refuses_the_fault_before_anything_is_injected() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let client = kube_client(&sandbox).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})),
        )
        .await
        .expect("labelled");
    let journal = dir.path().join("journal.jsonl");
    let output = run(
        &[
            "run",
            "experiments/sandbox/pod-network-latency.yaml",
            "--journal",
            journal.to_str().unwrap(),
            "--report-dir",
            dir.path().join("reports").to_str().unwrap(),
        ],
        &[("KUBECONFIG", sandbox.kubeconfig_path())],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("pod-security.kubernetes.io/enforce=restricted"))
        .unwrap_or_else(|| panic!("the label is named: {stderr}"));
    assert!(
        line.contains("namespace shop") && line.contains("NET_ADMIN"),
        "{line}"
    );
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    for pod in pods.list(&ListParams::default()).await.unwrap() {
        let ephemeral = pod.spec.and_then(|s| s.ephemeral_containers);
        assert!(ephemeral.is_none_or(|e| e.is_empty()), "nothing injected");
    }
    sandbox.shutdown().await;
}

/// The first web pod whose ephemeral container is running, with that container's name.
async fn pod_with_running_rule(pods: &Api<Pod>) -> Option<(Pod, String)> {
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .ok()?;
    listed.items.into_iter().find_map(|p| {
        let statuses = p.status.as_ref()?.ephemeral_container_statuses.clone()?;
        let running = statuses
            .iter()
            .find(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))?;
        Some((p.clone(), running.name.clone()))
    })
}

/// Starts the latency example, waits until a rule is in force, and kills the run with SIGKILL.
async fn kill_during_the_window(
    dir: &Path,
    kubeconfig: &Path,
    pods: &Api<Pod>,
    state: &str,
) -> (Pod, String, Instant) {
    // Each run keeps its lock and journal copy in its own state namespace.
    let namespaces: Api<Namespace> = Api::all(pods.clone().into_client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": state}})).unwrap(),
        )
        .await
        .expect("state namespace created");
    let journal = dir.join("journal.jsonl");
    let mut child = support::sandbox::command(
        &[
            "run",
            "experiments/sandbox/pod-network-latency.yaml",
            "--journal",
            journal.to_str().unwrap(),
            "--report-dir",
            dir.join("reports").to_str().unwrap(),
        ],
        &[
            ("KUBECONFIG", kubeconfig),
            ("STEADFAST_NAMESPACE", Path::new(state)),
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("the binary starts");
    let found = eventually(Duration::from_secs(30), || pod_with_running_rule(pods)).await;
    let injected = Instant::now();
    child.start_kill().expect("SIGKILL sent");
    let status = child.wait().await.expect("reaped");
    let (pod, container) = found.expect("a rule was put in force");
    assert!(!status.success(), "killed: {status:?}");
    (pod, container, injected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_leaves_no_rule_past_its_window_and_rollback_removes_it_early() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let pods: Api<Pod> = Api::namespaced(kube_client(&sandbox).await, "shop");

    // Killed, nothing rolled back: the rule is there after the kill and gone once the
    // container's window (10 s) ends, through its own removal.
    let first = dir.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    let (pod, container, injected) =
        kill_during_the_window(&first, sandbox.kubeconfig_path(), &pods, "state-first").await;
    let url = backend_url(&pod);
    let (slow, _) = time_get(&url).await;
    assert!(slow >= Duration::from_millis(200), "{slow:?}");
    let name = pod.metadata.name.clone().unwrap();
    let ended = eventually(Duration::from_secs(15), || async {
        let p = pods.get(&name).await.ok()?;
        ephemeral_state(&p, &container).and_then(|s| s.get("terminated").cloned())
    })
    .await
    .expect("the container ended its window");
    let window_end = injected.elapsed();
    assert_eq!(ended["exitCode"], json!(0), "its own removal ran: {ended}");
    let (fast, _) = time_get(&url).await;
    eprintln!("killed run: rule gone {window_end:?} after injection; a request then took {fast:?}");
    assert!(fast < Duration::from_millis(100), "{fast:?}");
    assert!(window_end < Duration::from_secs(13), "{window_end:?}");
    let names: Vec<String> = pods
        .get(&name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .ephemeral_containers
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(!names.iter().any(|n| n.ends_with("-undo")), "{names:?}");

    // Killed again, then `steadfast rollback` from the journal: the rule goes at once.
    let second = dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let (pod, _, _) =
        kill_during_the_window(&second, sandbox.kubeconfig_path(), &pods, "state-second").await;
    let url = backend_url(&pod);
    let (slow, _) = time_get(&url).await;
    assert!(slow >= Duration::from_millis(200), "{slow:?}");
    let journal = second.join("journal.jsonl");
    let started = Instant::now();
    let rollback = run(
        &["rollback", "--journal", journal.to_str().unwrap()],
        &[
            ("KUBECONFIG", sandbox.kubeconfig_path()),
            ("STEADFAST_NAMESPACE", Path::new("state-second")),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(rollback.status.code(), Some(0), "{}", both(&rollback));
    let healed = eventually(Duration::from_secs(5), || async {
        let (t, ok) = time_get(&url).await;
        (ok && t < Duration::from_millis(100)).then_some(started.elapsed())
    })
    .await
    .expect("the rule is removed early");
    eprintln!("rollback: rule gone {healed:?} after `steadfast rollback` started");
    assert!(healed < Duration::from_secs(5));
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_pod_fails_its_own_probe_until_the_window_ends() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let (output, report) = run_example(
        "experiments/sandbox/pod-network-blackhole.yaml",
        dir.path(),
        sandbox.kubeconfig_path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let cut = targets(&report);
    assert_eq!(cut.len(), 1);
    let window = &report["faults"][0]["window"];
    let (start, end) = (
        window["start"].as_f64().unwrap(),
        window["end"].as_f64().unwrap(),
    );
    eprintln!("report windows: {}", report["windows"]);
    for (pod, p) in endpoint_probes(&report) {
        let availability = |w: &str| p["windows"][w]["availability"].as_f64().unwrap();
        eprintln!(
            "{pod}: availability before {:.3}, during {:.3}, after {:.3}",
            availability("before"),
            availability("during"),
            availability("after")
        );
        if pod == cut[0] {
            // Nothing answers while the rule holds (a request sent in the window's last second
            // is answered when it ends); everything does from a second after it.
            let mut cut_seconds = 0;
            for point in p["series"].as_array().unwrap() {
                let t = point["t"].as_f64().unwrap();
                let ratio = point["successRatio"].as_f64();
                if t >= start + 1.0 && t + 2.0 <= end {
                    assert_eq!(ratio, Some(0.0), "{pod} at {t:.1}s");
                    cut_seconds += 1;
                }
                if t >= end + 1.0 {
                    assert_eq!(ratio, Some(1.0), "{pod} at {t:.1}s");
                }
            }
            assert!(cut_seconds >= 5, "{cut_seconds}");
            assert!(availability("during") < 0.6, "{pod}");
        } else {
            assert!(availability("during") >= 0.99, "{pod}");
        }
    }
    sandbox.shutdown().await;
}

/// The probe's per-interval points from the moment the rule was on every target until the
/// fault's window ended (injection into 6 pods at the API's rate takes a second or two, and the
/// "during" window also counts the time before `at`).
fn while_active<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    let fault = &report["faults"][0];
    let on = fault["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["at"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let end = fault["window"]["end"].as_f64().unwrap();
    probe(report, name)["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            let t = p["t"].as_f64().unwrap();
            t >= on + 0.5 && t + 0.5 <= end
        })
        .collect()
}

/// Attempts and success ratio while the rule was on.
fn during(report: &Value, name: &str) -> (u64, f64) {
    let points = while_active(report, name);
    let attempts: u64 = points.iter().map(|p| p["attempts"].as_u64().unwrap()).sum();
    let ok: f64 = points
        .iter()
        .map(|p| p["attempts"].as_f64().unwrap() * p["successRatio"].as_f64().unwrap())
        .sum();
    (attempts, ok / attempts as f64)
}

/// Median of the per-interval p50s while the rule was on.
fn p50_while_active(report: &Value, name: &str) -> f64 {
    let mut v: Vec<f64> = while_active(report, name)
        .iter()
        .filter_map(|p| p["p50Ms"].as_f64())
        .collect();
    assert!(v.len() >= 10, "{name}: {} points", v.len());
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_towards_the_api_service_fails_only_the_requests_that_call_it() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let (output, report) = run_example(
        "experiments/sandbox/pod-network-loss-between-services.yaml",
        dir.path(),
        sandbox.kubeconfig_path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(targets(&report).len(), 6, "{}", report["faults"]);
    let (attempts, checkout) = during(&report, "checkout");
    let (direct_attempts, direct) = during(&report, "web");
    eprintln!(
        "checkout (calls api): {checkout:.3} of {attempts}; web / (does not): {direct:.3} of {direct_attempts}"
    );
    assert!(attempts >= 2000, "{attempts}");
    assert!((0.65..=0.75).contains(&checkout), "{checkout}");
    assert!(direct >= 0.99, "{direct}");
    sandbox.shutdown().await;
}

/// 200 ms on every web pod towards the api Service only.
const LATENCY_TO_API: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: latency-to-api}
spec:
  duration: 20s
  steadyState:
    before: 5s
    after: 3s
    recoveryTimeout: 30s
    probes:
      - name: checkout
        http: {service: {namespace: shop, name: web, path: /checkout}, rate: 20/s, timeout: 2s, newConnectionPerRequest: true}
      - name: web
        http: {service: {namespace: shop, name: web, path: /}, rate: 20/s, timeout: 2s, newConnectionPerRequest: true}
  faults:
    - name: slow-to-api
      at: 1s
      for: 12s
      podNetworkLatency:
        target: {namespaces: [shop], selector: app=web, mode: all}
        delay: 200ms
        to:
          service: {namespace: shop, name: api}
  targets:
    - {probe: web, availability: ">= 99%"}
  safety:
    allowNamespaces: [shop]
    maxPods: 6
    maxPercent: 100%
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_towards_the_api_service_slows_only_the_requests_that_call_it() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let file = dir.path().join("latency-to-api.yaml");
    std::fs::write(&file, LATENCY_TO_API).unwrap();
    let (output, report) = run_example(
        file.to_str().unwrap(),
        dir.path(),
        sandbox.kubeconfig_path(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    // The destinations were resolved before acting and recorded: api's ClusterIP on port 80
    // and its 3 ready endpoints.
    let journal = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"destinations\""), "{journal}");
    let p50 = |name: &str, w: &str| {
        if w == "during" {
            return p50_while_active(&report, name);
        }
        probe(&report, name)["windows"][w]["latencyMs"]["p50"]
            .as_f64()
            .unwrap()
    };
    let rise = |name: &str| p50(name, "during") - p50(name, "before");
    eprintln!(
        "checkout p50 {:.1} -> {:.1} ms (+{:.1}); web / p50 {:.1} -> {:.1} ms (+{:.1})",
        p50("checkout", "before"),
        p50("checkout", "during"),
        rise("checkout"),
        p50("web", "before"),
        p50("web", "during"),
        rise("web"),
    );
    assert!(
        (180.0..=220.0).contains(&rise("checkout")),
        "{}\n{}\n{}",
        rise("checkout"),
        report["faults"],
        probe(&report, "checkout")["series"]
    );
    assert!(rise("web").abs() < 20.0, "{}", rise("web"));
    sandbox.shutdown().await;
}
