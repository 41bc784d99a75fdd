//! Watches that survive their own interruptions: 1,000 pod changes made through the API while
//! the sandbox closes every open watch 50 times and answers a share of the resumes 410 Gone
//! (so clients relist). The readiness observer must record every change of the ready count
//! exactly once, in order, and the healing observer must see every killed pod disrupted and
//! paired with exactly one replacement, each compared with the test's own record of what it
//! did.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use steadfast::fault::healing::HealingObserver;
use steadfast::fault::kube_context::KubeFaultContext;
use steadfast::fault::pod_kill::PodKill;
use steadfast::fault::{Effect, Fault, Injection, TargetEffect};
use steadfast::infra::kube::readiness_watch::{Counted, ReadinessWatch};
use steadfast::infra::kube::{KubeClient, KubeOptions};
use steadfast::sandbox::{GoneOnResumeSpec, HostileSpec, Sandbox, SandboxOptions, Topology};
use steadfast::spec::DurationSpec;
use steadfast::spec::Percent;
use steadfast::spec::fault::{PodKillSpec, PodTargetSpec, SelectionMode};
use steadfast::spec::probe::{KubernetesProbeSpec, PodQuery};
use steadfast::spec::safety::SafetySpec;
use tokio_util::sync::CancellationToken;

/// `web` is what the healing observer follows; the readiness observer follows bare pods the
/// test creates in `flip` (never scheduled, so only the test sets their status).
const TOPOLOGY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones:
  - {name: us-east-1a, nodes: 2}
  - {name: us-east-1b, nodes: 2}
timing:
  podStartupDelay: 100ms
  nodeBootDelay: 300ms
  terminationGracePeriod: 1s
  preStopDelay: 50ms
deployments:
  - {name: web, namespace: shop, replicas: 20, labels: {app: web}}
"#;

/// Pod changes in all.
const CHANGES: usize = 1000;
/// Forced closes of every open watch, spread evenly over the changes.
const CLOSES: usize = 50;
/// `web` pods killed, one every `CHANGES / KILLS` changes.
const KILLS: usize = 20;
/// Bare pods whose readiness the test flips.
const FLIP_PODS: usize = 10;
/// Longest wait for the readiness observer to catch up with one change.
const CATCH_UP: Duration = Duration::from_secs(10);

fn flip_pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "flip", "labels": {"app": "flip"}},
        "spec": {
            "containers": [{"name": "c", "image": "registry.example/flip:1"}],
            // No node carries it: the scheduler leaves the pod alone, the test owns its status.
            "nodeSelector": {"steadfast.dev/nowhere": "true"}
        }
    }))
    .expect("a pod")
}

async fn set_ready(pods: &Api<Pod>, name: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status patched");
}

/// The ready counts the observer reported, in order, without repeats; and how many reports.
#[derive(Default)]
struct Seen {
    transitions: Vec<u64>,
    reports: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn observers_see_every_pod_change_once_across_closes_and_relists() {
    let started = Instant::now();
    let topology = Topology::parse(TOPOLOGY, "watch resume topology").expect("topology");
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
        .await
        .expect("sandbox starts");
    sandbox
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("sandbox ready");
    let kube = KubeClient::connect(&KubeOptions {
        kubeconfig: Some(sandbox.kubeconfig_path().to_path_buf()),
        qps: 500,
        burst: 500,
        ..KubeOptions::default()
    })
    .await
    .expect("steadfast client");
    let raw = kube.raw().clone();
    let namespaces: Api<Namespace> = Api::all(raw.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "flip"}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace flip");
    let flip: Api<Pod> = Api::namespaced(raw.clone(), "flip");
    let web: Api<Pod> = Api::namespaced(raw.clone(), "shop");
    wait_for(Duration::from_secs(60), "20 ready web pods", || async {
        let pods = web.list(&ListParams::default()).await.ok()?;
        let ready = pods
            .items
            .iter()
            .filter(|p| steadfast::fault::targets::is_running_and_ready(p))
            .count();
        (ready == 20).then_some(())
    })
    .await;

    // The readiness observer, as a kubernetes probe on `app=flip` pods runs it.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = CancellationToken::new();
    let watch = ReadinessWatch::with_client(
        raw.clone(),
        KubernetesProbeSpec {
            pods: Some(PodQuery {
                namespace: "flip".into(),
                selector: "app=flip".into(),
            }),
            workload: None,
            nodes: None,
            ready: None,
        },
    );
    let observer = {
        let (seen, stop) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            let on_change = move |counted: Counted| {
                let mut s = seen.lock().unwrap();
                s.reports += 1;
                if let Ok(count) = counted
                    && s.transitions.last() != Some(&count.ready)
                {
                    s.transitions.push(count.ready);
                }
            };
            watch.run(stop, &on_change).await;
        })
    };

    // The healing observer, following a kill of every `web` pod.
    let fault = PodKill::new(
        "kill-web".into(),
        PodKillSpec {
            target: PodTargetSpec {
                namespaces: vec!["shop".into()],
                selector: Some("app=web".into()),
                mode: SelectionMode::All,
                ..PodTargetSpec::default()
            },
            grace_period: DurationSpec::from_secs(0),
        },
        KubeFaultContext {
            kube: kube.clone(),
            safety: SafetySpec {
                allow_namespaces: vec!["shop".into()],
                max_pods: KILLS as u32,
                max_percent: Percent::new(100.0),
                ..SafetySpec::default()
            },
            run_seed: 7,
            own_pod: None,
        },
    );
    let plan = fault.plan("watch-resume", 0).await.expect("plan");
    assert_eq!(plan.targets.len(), KILLS);
    let healing = HealingObserver::start(&kube, &plan, Duration::from_secs(120))
        .await
        .expect("healing observer starts");

    // From here on a share of watch resumes is told 410 Gone: the watchers must relist.
    sandbox.set_hostile(Some(HostileSpec {
        seed: 17,
        gone_on_resume: Some(GoneOnResumeSpec {
            probability: 0.4,
            resources: Vec::new(),
        }),
        ..HostileSpec::default()
    }));

    let mut rng = StdRng::seed_from_u64(0x3a7c);
    // Ground truth: every ready count the flip pods went through, and the kills.
    let mut truth: Vec<u64> = vec![0];
    let mut pods: Vec<(String, bool)> = Vec::new();
    let mut next_name = 0;
    let mut effects = Vec::new();
    let mut targets = plan.targets.iter();
    let mut closes = 0;
    for change in 0..CHANGES {
        if change % (CHANGES / CLOSES) == CHANGES / CLOSES - 1 {
            sandbox.close_watches();
            closes += 1;
        }
        if change % (CHANGES / KILLS) == CHANGES / KILLS - 1 {
            let target = targets.next().expect("a pod left to kill");
            let at = SystemTime::now();
            web.delete(&target.name, &DeleteParams::default().grace_period(0))
                .await
                .expect("web pod deleted");
            effects.push(TargetEffect {
                target: target.clone(),
                effect: Effect::Applied,
                at,
            });
            continue;
        }
        let before = pods.iter().filter(|(_, r)| *r).count();
        if pods.len() < FLIP_PODS {
            let name = format!("flip-{next_name}");
            next_name += 1;
            flip.create(&PostParams::default(), &flip_pod(&name))
                .await
                .expect("pod created");
            pods.push((name, false));
        } else if rng.random_range(0..8) == 0 {
            // Deleted; its replacement comes with a later change.
            let (name, _) = pods.swap_remove(rng.random_range(0..pods.len()));
            flip.delete(&name, &DeleteParams::default().grace_period(0))
                .await
                .expect("pod deleted");
        } else {
            let i = rng.random_range(0..pods.len());
            pods[i].1 = !pods[i].1;
            set_ready(&flip, &pods[i].0, pods[i].1).await;
        }
        let after = pods.iter().filter(|(_, r)| *r).count() as u64;
        if after as usize != before {
            truth.push(after);
            // One change per gap at most, so a relist cannot merge two of them.
            let seen = seen.clone();
            wait_for(CATCH_UP, &format!("change {change}: ready {after}"), || {
                let last = seen.lock().unwrap().transitions.last().copied();
                async move { (last == Some(after)).then_some(()) }
            })
            .await;
        }
    }
    assert_eq!(closes, CLOSES);
    let injection = Injection { effects };
    let evidence = healing.finish_after(&injection).await;
    stop.cancel();
    observer.await.expect("readiness observer ends");

    let relists = gone_answers(&raw).await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    println!(
        "watch resume: {CHANGES} changes, {closes} forced closes, {relists} resumes told 410 Gone; readiness: {} transitions recorded for {} in truth ({} reports); healing: {} of {KILLS} kills disrupted, {} replaced; {:.1?}",
        seen.transitions.len(),
        truth.len(),
        seen.reports,
        evidence.pods.iter().filter(|p| p.disrupted).count(),
        evidence
            .pods
            .iter()
            .filter(|p| p.replacement.is_some())
            .count(),
        started.elapsed()
    );
    assert_eq!(
        seen.transitions, truth,
        "the readiness observer saw every change once"
    );
    assert!(relists >= 5, "resumes told 410 Gone: {relists}");

    // Healing: every kill disrupted, each paired with its own replacement, all of which are
    // the pods the ReplicaSet created (the test's own list), and the workload whole again.
    assert!(evidence.healed && !evidence.timed_out, "{evidence:#?}");
    assert_eq!(evidence.pods.len(), KILLS);
    let killed: Vec<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
    let mut replacements: Vec<String> = evidence
        .pods
        .iter()
        .map(|p| {
            assert!(p.disrupted && p.ready_after_ms.is_some(), "{p:?}");
            p.replacement.clone().expect("a replacement")
        })
        .collect();
    replacements.sort();
    let mut created: Vec<String> = web
        .list(&ListParams::default())
        .await
        .expect("web pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .filter(|n| !killed.contains(&n.as_str()))
        .collect();
    created.sort();
    assert_eq!(
        replacements, created,
        "one replacement per kill, each a pod the ReplicaSet created"
    );
    sandbox.set_hostile(None);
    sandbox.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// Watch resumes the sandbox answered 410 Gone, from its `/metrics`.
async fn gone_answers(client: &kube::Client) -> u64 {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let text = client.request_text(request).await.expect("/metrics");
    text.lines()
        .filter(|l| l.starts_with("steadfast_sandbox_hostile_injected_total{kind=\"gone410\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

/// Polls `check` every 20 ms until it answers, failing after `limit`.
async fn wait_for<F, Fut>(limit: Duration, what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let start = Instant::now();
    loop {
        if check().await.is_some() {
            return;
        }
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
