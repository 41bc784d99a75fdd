//! `steadfast probe` end to end: the real binary runs an experiment's steady-state probes
//! against the sandbox and exits 0 when the steady state holds, 1 when it does not, 2 for a bad
//! file.

mod support;

use std::path::{Path, PathBuf};

use std::time::Duration;

use serde_json::Value;
use steadfast::sandbox::BackendBehaviour;
use support::sandbox::{both, run, start_in};

/// Probing for three seconds plus connecting and draining; bounds a stuck command.
const LIMIT: Duration = Duration::from_secs(90);

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("experiment written");
    path
}

const BROKEN_SERVICE: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: probe-broken-api}
spec:
  duration: 30s
  steadyState:
    probes:
      - name: api
        http:
          service: {namespace: shop, name: api, path: /}
          rate: 40/s
          timeout: 1s
"#;

const TOO_FEW_REPLICAS: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: probe-too-few}
spec:
  duration: 30s
  steadyState:
    probes:
      - name: web-pods
        kubernetes:
          pods: {namespace: shop, selector: app=web}
          ready: ">= 7"
"#;

fn window(probe: &Value) -> &Value {
    &probe["windows"]["probe"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_probes_exit_0_broken_ones_1_and_a_bad_file_2() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_in(dir.path()).await;
    let env = [("KUBECONFIG", sandbox.kubeconfig_path())];

    // Steady: the Service, each of its six endpoints, the Deployment's replicas, zone-a nodes.
    let path = "experiments/sandbox/steady-state.yaml";
    let output = run(&["probe", path, "--for", "3s", "-o", "json"], &env, LIMIT).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report["steady"], true, "{report:#}");
    let probes = report["probes"].as_array().unwrap();
    let web = &probes[0];
    assert_eq!(web["name"], "web");
    let attempts = window(web)["attempts"].as_u64().unwrap();
    assert!(attempts > 100, "3 s at 60/s: {attempts}");
    assert_eq!(window(web)["successes"], attempts);
    assert!(window(web)["latencyMs"]["p99"].as_f64().unwrap() > 0.0);
    assert!(web["backends"].as_array().unwrap().len() >= 2, "{web:#}");
    let endpoints: Vec<&Value> = probes.iter().filter(|p| p["endpointOf"] == "web").collect();
    assert_eq!(
        endpoints.len(),
        6,
        "one probe per ready web pod: {report:#}"
    );
    for endpoint in &endpoints {
        let name = endpoint["name"].as_str().unwrap();
        assert!(name.starts_with("web@web-"), "{name}");
        assert!(window(endpoint)["attempts"].as_u64().unwrap() > 100);
        // Every response of an endpoint probe names that endpoint's pod.
        let backends = endpoint["backends"].as_array().unwrap();
        assert_eq!(backends.len(), 1);
        assert_eq!(
            format!("web@{}", backends[0]["backend"].as_str().unwrap()),
            name
        );
    }
    let replicas = probes.iter().find(|p| p["name"] == "web-replicas").unwrap();
    assert_eq!(replicas["kind"], "kubernetes");
    assert_eq!(window(replicas)["satisfied"], 1.0);
    let evaluations = replicas["evaluations"].as_array().unwrap();
    assert!(evaluations.len() >= 2, "{replicas:#}");
    assert_eq!(evaluations[0]["value"], 6.0);
    let nodes = probes.iter().find(|p| p["name"] == "zone-a-nodes").unwrap();
    assert_eq!(nodes["evaluations"][0]["value"], 2.0);
    let latency = &window(web)["latencyMs"];
    eprintln!(
        "steady: web {attempts} requests, availability {}, p50 {} ms, p99 {} ms, max {} ms; {} endpoint probes; web-replicas {} evaluations",
        window(web)["availability"],
        latency["p50"],
        latency["p99"],
        latency["max"],
        endpoints.len(),
        evaluations.len()
    );

    // A Service whose backends all answer 500: not steady.
    sandbox.set_backend_behaviour(
        "shop",
        "api",
        BackendBehaviour {
            latency: Duration::from_millis(1),
            error_rate: 1.0,
        },
    );
    let file = write(dir.path(), "broken.yaml", BROKEN_SERVICE);
    let output = run(
        &["probe", file.to_str().unwrap(), "--for", "2s", "-o", "json"],
        &env,
        LIMIT,
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report["steady"], false);
    let api = &report["probes"][0];
    assert_eq!(window(api)["successes"], 0);
    assert!(window(api)["failures"]["status"].as_u64().unwrap() > 40);
    assert!(
        report["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("api: availability 0.00%"),
        "{report:#}"
    );

    // A readiness bound the workload cannot meet, in text: not steady, and it says why.
    let file = write(dir.path(), "too-few.yaml", TOO_FEW_REPLICAS);
    let output = run(
        &["probe", file.to_str().unwrap(), "--for", "2s"],
        &env,
        LIMIT,
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    eprintln!("{text}");
    assert!(text.contains("does NOT hold"), "{text}");
    assert!(
        text.contains("6 pods app=web in shop ready, expected >= 7"),
        "{text}"
    );

    // A file that does not validate: usage error, nothing probed.
    let file = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: steadfast.dev/v1alpha1\nkind: Nope\n",
    );
    let output = run(&["probe", file.to_str().unwrap()], &env, LIMIT).await;
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(output.stdout.is_empty(), "{}", both(&output));

    sandbox.shutdown().await;
}
