//! A fault that changes nothing is not taken for resilience: `ec2Stop` of an instance stopped
//! beforehand (through moto) ends `noEffect`, and `steadfast run` fails its targets (exit 1)
//! unless the fault sets `allowNoEffect`.

mod support;

#[path = "support/world.rs"]
mod world;

use std::path::Path;

use support::ok_server::ok_server;
use support::sandbox::both;
use world::start_world;

/// The probe is a loopback server outside the sandbox: the instance was stopped before the run,
/// so anything in the cluster that it backed is already down and would read as impact.
fn experiment(instance: &str, url: &str, allow: bool) -> String {
    format!(
        r#"apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata:
  name: stop-a-stopped-instance
spec:
  duration: 4s
  steadyState:
    before: 1s
    after: 1s
    recoveryTimeout: 10s
    probes:
      - name: service
        http: {{url: "{url}", rate: 20/s, timeout: 1s}}
  faults:
    - name: stop-stopped
      at: 0s
      for: 3s
      allowNoEffect: {allow}
      ec2Stop:
        target: {{instanceIds: [{instance}]}}
  targets:
    - {{probe: service, availability: ">= 99%"}}
  safety:
    maxNodes: 1
"#
    )
}

fn report(dir: &Path) -> serde_json::Value {
    let run = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .expect("a report directory");
    serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_an_already_stopped_instance_is_no_effect_and_fails_unless_allowed() {
    let Some(world) = start_world(true).await else {
        eprintln!("SKIPPED: moto_server is not installed (scripts/setup installs it)");
        return;
    };
    let cloud = world.cloud.as_ref().unwrap();
    let listed = cloud.ec2.describe_instances().send().await.unwrap();
    let instance = listed
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("running"))
        .filter_map(|i| i.instance_id())
        .min()
        .expect("a running instance")
        .to_owned();
    cloud
        .ec2
        .stop_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();

    let (url, served) = ok_server().await;
    for (i, allow) in [false, true].into_iter().enumerate() {
        let file = world.dir.path().join(format!("stop-{allow}.yaml"));
        std::fs::write(&file, experiment(&instance, &url, allow)).unwrap();
        let reports = world.dir.path().join(format!("reports-{allow}"));
        let namespace = format!("steadfast-effect-{i}");
        world.namespace(&namespace).await;
        let mut command = world.command(&["run", file.to_str().unwrap()], &namespace);
        command.env("STEADFAST_REPORTS_DIR", &reports);
        let output = tokio::time::timeout(std::time::Duration::from_secs(90), command.output())
            .await
            .expect("the run ends")
            .expect("the binary starts");
        let report = report(&reports);
        let fault = &report["faults"][0];
        assert_eq!(fault["effect"]["status"], "noEffect", "{fault:#}");
        let expected = if allow { 0 } else { 1 };
        assert_eq!(output.status.code(), Some(expected), "{}", both(&output));
        let missed: Vec<&str> = report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["passed"] == false)
            .filter_map(|t| t["name"].as_str())
            .collect();
        if allow {
            assert!(missed.is_empty(), "{missed:?}");
        } else {
            assert_eq!(missed, ["stop-stopped-effect"]);
            let summary = report["verdict"]["summary"].as_str().unwrap();
            assert!(summary.contains("the fault missed"), "{summary}");
        }
    }
    assert!(
        served.load(std::sync::atomic::Ordering::Relaxed) > 10,
        "the probe never reached its server"
    );
}
