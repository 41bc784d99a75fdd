//! steadfast against a hostile API server (the sandbox's seeded hostile mode): APF-throttled
//! evictions are retried and succeed, a real budget refusal is still a finding, and a rollback
//! meeting 30% server errors on its undo calls completes within its deadline.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use steadfast::fault::kube_context::KubeFaultContext;
use steadfast::fault::node_cordon::NodeCordon;
use steadfast::fault::pod_evict::PodEvict;
use steadfast::fault::pod_kill::PodKill;
use steadfast::fault::{Effect, Fault, TargetEffect};
use steadfast::infra::kube::{KubeClient, KubeOptions};
use steadfast::journal::{FileJournal, JournalEntry, pending, read_entries};
use steadfast::sandbox::{
    Apf429Spec, ConnectionResetSpec, Error5xxSpec, GoneOnResumeSpec, HostileSpec, Sandbox,
    SandboxOptions, Topology, WatchCloseSpec,
};
use steadfast::spec::fault::{
    NodeCordonSpec, NodeTargetSpec, PodEvictSpec, PodKillSpec, PodTargetSpec, SelectionMode,
};
use steadfast::spec::safety::SafetySpec;
use steadfast::spec::{DurationSpec, Percent};

/// `web` (6 replicas, budget minAvailable 5) and `api` (6 replicas, no budget), with timings
/// scaled down so evictions play out in about a second.
const TOPOLOGY: &str = r#"
apiVersion: steadfast.dev/v1alpha1
kind: SandboxTopology
region: us-east-1
zones:
  - {name: us-east-1a, nodes: 2}
  - {name: us-east-1b, nodes: 2}
  - {name: us-east-1c, nodes: 2}
timing:
  podStartupDelay: 300ms
  nodeBootDelay: 500ms
  terminationGracePeriod: 1s
  nodeMonitorGracePeriod: 5s
  toleration: 5s
  leaseRenewInterval: 500ms
  preStopDelay: 100ms
deployments:
  - {name: web, namespace: shop, replicas: 6, labels: {app: web}, service: {port: 80}, disruptionBudget: {minAvailable: 5}}
  - {name: api, namespace: shop, replicas: 6, labels: {app: api}, service: {port: 80}}
"#;

/// A running sandbox and the two clients a test needs.
struct Env {
    sandbox: Sandbox,
    /// steadfast's client (retrying, rate-limited).
    kube: KubeClient,
    /// A plain client for checks, without retries.
    raw: kube::Client,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let topology = Topology::parse(TOPOLOGY, "hostile test topology").expect("topology");
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = Sandbox::start(&topology, SandboxOptions::new(dir.path()))
            .await
            .expect("sandbox starts");
        sandbox
            .wait_ready(Duration::from_secs(60))
            .await
            .expect("sandbox ready");
        let path = sandbox.kubeconfig_path().to_path_buf();
        let kube = KubeClient::connect(&KubeOptions {
            kubeconfig: Some(path.clone()),
            qps: 50,
            burst: 100,
            ..KubeOptions::default()
        })
        .await
        .expect("steadfast client");
        let kc = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        // Checks see the server's answers as they are.
        config.default_retry = false;
        let raw = kube::Client::try_from(config).expect("raw client");
        let env = Env {
            sandbox,
            kube,
            raw,
            _dir: dir,
        };
        env.wait_ready("app=web", 6).await;
        env.wait_ready("app=api", 6).await;
        env
    }

    fn context(&self) -> KubeFaultContext {
        KubeFaultContext {
            kube: self.kube.clone(),
            safety: SafetySpec {
                allow_namespaces: vec!["shop".into()],
                max_pods: 10,
                max_nodes: 2,
                max_percent: Percent::new(100.0),
                ..SafetySpec::default()
            },
            run_seed: 7,
            own_pod: None,
        }
    }

    async fn ready_pods(&self, label: &str) -> usize {
        let api: Api<Pod> = Api::namespaced(self.raw.clone(), "shop");
        api.list(&ListParams::default().labels(label))
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|p| steadfast::fault::targets::is_running_and_ready(p))
                    .count()
            })
            .unwrap_or(0)
    }

    async fn wait_ready(&self, label: &str, n: usize) {
        let start = Instant::now();
        while self.ready_pods(label).await != n {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{n} ready pods {label} within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The sandbox's hostile-mode counters: `(kind, verb, resource)` → injected, and the
    /// number of requests decided on under the kind `requests`.
    async fn injected(&self) -> BTreeMap<(String, String, String), u64> {
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .expect("request");
        let text = self
            .raw
            .request_text(request)
            .await
            .expect("the sandbox serves /metrics even when hostile");
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("steadfast_sandbox_hostile_requests_total ") {
                let key = ("requests".to_owned(), String::new(), String::new());
                counts.insert(key, n.trim().parse().expect("a count"));
            }
            let Some(rest) = line.strip_prefix("steadfast_sandbox_hostile_injected_total{") else {
                continue;
            };
            let (labels, value) = rest.split_once("} ").expect("labels and a value");
            let label = |k: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .expect("the label is there")
            };
            counts.insert(
                (label("kind"), label("verb"), label("resource")),
                value.trim().parse().expect("a count"),
            );
        }
        counts
    }

    async fn schedulable(&self, node: &str) -> bool {
        let api: Api<Node> = Api::all(self.raw.clone());
        let node = api.get(node).await.expect("node exists");
        !node.spec.and_then(|s| s.unschedulable).unwrap_or(false)
    }
}

/// APF-style throttling of half the evictions, nothing else.
fn throttle_evictions() -> HostileSpec {
    HostileSpec {
        seed: 17,
        apf429: Some(Apf429Spec {
            probability: 0.5,
            retry_after_seconds: 1,
            verbs: vec!["create".into()],
            resources: vec!["pods/eviction".into()],
        }),
        ..HostileSpec::default()
    }
}

fn evict_all(label: &str) -> PodEvictSpec {
    PodEvictSpec {
        target: PodTargetSpec {
            namespaces: vec!["shop".into()],
            selector: Some(label.into()),
            mode: SelectionMode::All,
            ..PodTargetSpec::default()
        },
        on_blocked: Default::default(),
    }
}

fn count(effects: &[TargetEffect], pred: impl Fn(&Effect) -> bool) -> usize {
    effects.iter().filter(|e| pred(&e.effect)).count()
}

fn throttled_evictions(injected: &BTreeMap<(String, String, String), u64>) -> u64 {
    injected
        .get(&(
            "apf429".to_owned(),
            "create".to_owned(),
            "pods/eviction".to_owned(),
        ))
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apf_throttled_eviction_is_retried_and_succeeds_and_is_not_called_blocked_by_budget() {
    let env = Env::start().await;
    env.sandbox.set_hostile(Some(throttle_evictions()));
    let fault = PodEvict::new("evict-api".into(), evict_all("app=api"), env.context());
    let plan = fault.plan("run-hostile-evict", 0).await.expect("plan");
    assert_eq!(plan.targets.len(), 6);
    let started = Instant::now();
    let injection = fault.inject(&plan).await.expect("inject");
    let took = started.elapsed();
    let applied = count(&injection.effects, |e| *e == Effect::Applied);
    assert_eq!(applied, 6, "{:#?}", injection.effects);
    assert_eq!(
        count(&injection.effects, |e| matches!(
            e,
            Effect::BlockedByBudget { .. }
        )),
        0
    );
    let injected = throttled_evictions(&env.injected().await);
    assert!(injected > 0, "the sandbox throttled no eviction");
    let retries = env.kube.retry_counts().snapshot();
    let evictions = retries
        .get("create pods/eviction")
        .copied()
        .unwrap_or_default();
    assert_eq!(
        evictions.retries, injected,
        "every throttled eviction was retried once: {retries:?}"
    );
    eprintln!(
        "6 evictions, {injected} throttled with 429 + Retry-After: 1, all retried and applied in {took:?}"
    );
    env.sandbox.set_hostile(None);
    env.wait_ready("app=api", 6).await;
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_budget_refusal_is_still_reported_as_blocked_by_budget() {
    let env = Env::start().await;
    env.sandbox.set_hostile(Some(throttle_evictions()));
    let fault = PodEvict::new("evict-web".into(), evict_all("app=web"), env.context());
    let plan = fault.plan("run-hostile-budget", 0).await.expect("plan");
    assert_eq!(plan.targets.len(), 6);
    let injection = fault.inject(&plan).await.expect("inject");
    let applied = count(&injection.effects, |e| *e == Effect::Applied);
    let blocked = count(
        &injection.effects,
        |e| matches!(e, Effect::BlockedByBudget { budget } if budget == "web"),
    );
    // minAvailable 5 of 6: the first wave lets one eviction through and the budget refuses the
    // others by name (never retried: a refusal is a finding). Throttled ones come back after
    // Retry-After, when a replacement may be Ready, and then pass or are refused. None fails.
    assert!(
        applied >= 1 && blocked >= 1 && applied + blocked == 6,
        "{:#?}",
        injection.effects
    );
    assert!(throttled_evictions(&env.injected().await) > 0);
    env.sandbox.set_hostile(None);
    env.wait_ready("app=web", 6).await;
    env.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_under_30_percent_injected_errors_completes_with_exit_0() {
    let env = Env::start().await;
    // Every node cordoned on a friendly server, two per fault, their undo journalled as a run
    // does.
    let nodes = env.sandbox.node_names();
    assert_eq!(nodes.len(), 6);
    let dir = tempfile::tempdir().expect("temp dir");
    let journal_path = dir.path().join("journal.jsonl");
    let journal = FileJournal::open(&journal_path).expect("journal");
    for (i, pair) in (0u32..).zip(nodes.chunks(2)) {
        let fault = NodeCordon::new(
            format!("cordon-{i}"),
            NodeCordonSpec {
                target: NodeTargetSpec {
                    mode: SelectionMode::Names,
                    names: pair.to_vec(),
                    ..NodeTargetSpec::default()
                },
            },
            env.context(),
        );
        let plan = fault.plan("run-hostile-rollback", i).await.expect("plan");
        assert_eq!(plan.undo.len(), 2);
        for record in &plan.undo {
            journal
                .append(&JournalEntry::Undo(record.clone()))
                .expect("journalled");
        }
        let injection = fault.inject(&plan).await.expect("inject");
        assert_eq!(
            count(&injection.effects, |e| *e == Effect::Applied),
            2,
            "{:#?}",
            injection.effects
        );
    }
    for node in &nodes {
        assert!(!env.schedulable(node).await, "{node} cordoned");
    }
    drop(journal);

    // 30% of every resource request fails with 500, 503 or 504 (504 after carrying it out).
    env.sandbox.set_hostile(Some(HostileSpec {
        seed: 30,
        error5xx: Some(Error5xxSpec {
            probability: 0.3,
            codes: vec![500, 503, 504],
            verbs: Vec::new(),
            resources: Vec::new(),
        }),
        ..HostileSpec::default()
    }));
    let started = Instant::now();
    let output = support::sandbox::run(
        &[
            "rollback",
            "--journal",
            journal_path.to_str().expect("utf-8 path"),
            "--no-cluster-journal",
            "--undo-deadline",
            "60s",
        ],
        &[("KUBECONFIG", env.sandbox.kubeconfig_path())],
        Duration::from_secs(90),
    )
    .await;
    let took = started.elapsed();
    let injected = env.injected().await;
    env.sandbox.set_hostile(None);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::sandbox::both(&output)
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let entries = read_entries(&journal_path).expect("journal readable");
    assert!(
        pending(&entries).is_empty(),
        "{:?}\n{}",
        pending(&entries),
        support::sandbox::both(&output)
    );
    for node in &nodes {
        assert!(env.schedulable(node).await, "{node} still cordoned");
    }
    let errors: u64 = injected
        .iter()
        .filter(|((kind, _, _), _)| kind.starts_with("error"))
        .map(|(_, n)| n)
        .sum();
    assert!(errors > 0, "no error was injected: {injected:?}");
    eprintln!("rollback of 6 cordons met {errors} injected 5xx ({injected:?}) and took {took:?}");
    env.sandbox.shutdown().await;
}

/// Every pod DELETE is answered 504 after it was carried out: steadfast re-reads instead of
/// sending it again, so each pod is deleted exactly once and the kill counts as applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_delete_answered_504_is_re_read_not_sent_twice() {
    let env = Env::start().await;
    env.sandbox.set_hostile(Some(HostileSpec {
        seed: 5,
        error5xx: Some(Error5xxSpec {
            probability: 1.0,
            codes: vec![504],
            verbs: vec!["delete".into()],
            resources: vec!["pods".into()],
        }),
        ..HostileSpec::default()
    }));
    let fault = PodKill::new(
        "kill-api".into(),
        PodKillSpec {
            target: PodTargetSpec {
                namespaces: vec!["shop".into()],
                selector: Some("app=api".into()),
                mode: SelectionMode::Count,
                count: Some(3),
                ..PodTargetSpec::default()
            },
            grace_period: DurationSpec::from_secs(0),
        },
        env.context(),
    );
    let plan = fault.plan("run-hostile-kill", 0).await.expect("plan");
    assert_eq!(plan.targets.len(), 3);
    let injection = fault.inject(&plan).await.expect("inject");
    assert_eq!(
        count(&injection.effects, |e| *e == Effect::Applied),
        3,
        "{:#?}",
        injection.effects
    );
    let injected = env.injected().await;
    let key = (
        "error504".to_owned(),
        "delete".to_owned(),
        "pods".to_owned(),
    );
    assert_eq!(
        injected.get(&key),
        Some(&3),
        "one DELETE per pod: {injected:?}"
    );
    env.sandbox.set_hostile(None);
    env.wait_ready("app=api", 6).await;
    env.sandbox.shutdown().await;
}

/// With every resource request failing, health checks, discovery and /metrics still answer,
/// and a watch is closed by the server within the configured range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_discovery_are_never_refused_and_watches_end_within_the_range() {
    let env = Env::start().await;
    env.sandbox.set_hostile(Some(HostileSpec {
        seed: 9,
        error5xx: Some(Error5xxSpec {
            probability: 1.0,
            codes: vec![503],
            verbs: vec!["get".into(), "list".into()],
            resources: Vec::new(),
        }),
        watch_close_after: Some(WatchCloseSpec {
            min: Duration::from_secs(1),
            max: Some(Duration::from_secs(2)),
            resources: Vec::new(),
        }),
        ..HostileSpec::default()
    }));
    for path in [
        "/healthz", "/livez", "/readyz", "/version", "/api", "/apis", "/api/v1",
    ] {
        let request = http::Request::get(path).body(Vec::new()).expect("request");
        let answer = env.raw.request_text(request).await;
        assert!(answer.is_ok(), "{path}: {answer:?}");
    }
    let nodes: Api<Node> = Api::all(env.raw.clone());
    let refused = nodes.list(&ListParams::default()).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 503),
        "{refused:?}"
    );
    // Only the server's close ends this stream: its initial events come at once, then silence.
    let request = http::Request::get("/api/v1/namespaces/shop/pods?watch=true")
        .body(Vec::new())
        .expect("request");
    let started = Instant::now();
    let stream = env
        .raw
        .request_stream(request)
        .await
        .expect("the watch starts");
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        use futures::AsyncReadExt;
        let mut stream = Box::pin(stream);
        let mut sink = Vec::new();
        stream.read_to_end(&mut sink).await
    })
    .await;
    let lived = started.elapsed();
    assert!(drained.is_ok(), "the watch was not closed within 10 s");
    assert!(
        lived >= Duration::from_millis(900) && lived < Duration::from_secs(4),
        "the watch lived {lived:?}"
    );
    let injected = env.injected().await;
    let closes = injected
        .get(&(
            "watchClose".to_owned(),
            "watch".to_owned(),
            "pods".to_owned(),
        ))
        .copied();
    assert_eq!(closes, Some(1), "{injected:?}");
    env.sandbox.set_hostile(None);
    env.sandbox.shutdown().await;
}

/// A dropped connection sends not one byte (no status line), and a watch resuming from a
/// resourceVersion is accepted and told 410 Gone in an ERROR event, both counted on /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_sends_no_answer_and_a_resume_is_told_gone() {
    use futures::{StreamExt, TryStreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start().await;
    let nodes: Api<Node> = Api::all(env.raw.clone());
    let listed = nodes.list(&ListParams::default()).await.expect("nodes");
    let rv = listed.metadata.resource_version.clone().expect("a list rv");
    let name = listed.items[0].metadata.name.clone().expect("a node name");
    env.sandbox.set_hostile(Some(HostileSpec {
        seed: 2,
        connection_reset: Some(ConnectionResetSpec {
            probability: 1.0,
            verbs: vec!["get".into()],
            resources: vec!["nodes".into()],
        }),
        gone_on_resume: Some(GoneOnResumeSpec {
            probability: 1.0,
            resources: vec!["nodes".into()],
        }),
        ..HostileSpec::default()
    }));
    // Raw HTTP, to see exactly what comes back: nothing.
    let mut tcp = tokio::net::TcpStream::connect(env.sandbox.api_addr())
        .await
        .expect("connect");
    let request =
        format!("GET /api/v1/nodes/{name} HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("the server ends the connection within 10 s");
    assert!(
        answer.is_empty(),
        "no status line, got {read:?}: {}",
        String::from_utf8_lossy(&answer)
    );
    // Through kube: a transport error, not an API status.
    match nodes.get(&name).await {
        Err(kube::Error::Api(status)) => panic!("expected a dropped connection, got {status:?}"),
        Err(_) => {}
        Ok(_) => panic!("expected a dropped connection, got an answer"),
    }
    // Lists are not in the filter; a resume from the list's revision is told it expired.
    let watch = nodes
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .expect("the resume is accepted");
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(10), watch.try_collect())
        .await
        .expect("the expired watch ends at once")
        .expect("a readable stream");
    assert!(
        matches!(events.as_slice(), [kube::core::WatchEvent::Error(e)] if e.code == 410 && e.reason == "Expired"),
        "{events:?}"
    );
    // A watch that lists first is not a resume.
    let fresh = nodes
        .watch(&kube::api::WatchParams::default().timeout(1), "0")
        .await
        .expect("a fresh watch");
    let first = fresh.boxed().next().await;
    assert!(
        matches!(first, Some(Ok(kube::core::WatchEvent::Added(_)))),
        "{first:?}"
    );
    let injected = env.injected().await;
    let key = |kind: &str, verb: &str| (kind.to_owned(), verb.to_owned(), "nodes".to_owned());
    assert_eq!(
        injected.get(&key("connectionReset", "get")),
        Some(&2),
        "{injected:?}"
    );
    assert_eq!(
        injected.get(&key("gone410", "watch")),
        Some(&1),
        "{injected:?}"
    );
    env.sandbox.set_hostile(None);
    env.sandbox.shutdown().await;
}

/// `sandbox up --hostile SEED` announces itself, refuses a share of requests, and counts every
/// refusal it made on `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_up_hostile_refuses_a_share_of_requests_and_counts_them() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = support::sandbox::command(
        &[
            "sandbox",
            "up",
            "--hostile",
            "3",
            "--dir",
            dir.path().to_str().expect("utf-8 path"),
        ],
        &[],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .expect("sandbox up starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let last = line.starts_with("then:");
            banner.push(line);
            if last {
                break;
            }
        }
    })
    .await
    .expect("sandbox up prints its banner within 60 s");
    let text = banner.join("\n");
    assert!(text.contains("hostile:       seed 3"), "{text}");
    let kc =
        kube::config::Kubeconfig::read_from(dir.path().join("kubeconfig")).expect("kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    config.default_retry = false;
    let client = kube::Client::try_from(config).expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    let mut refused = BTreeMap::<u16, u64>::new();
    for _ in 0..100 {
        match nodes.list(&ListParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) => *refused.entry(status.code).or_default() += 1,
            // A dropped connection has no status: counted as 0.
            Err(_) => *refused.entry(0).or_default() += 1,
        }
    }
    let total: u64 = refused.values().sum();
    // 17% of 100 on average; a seeded draw far from it means the preset is not applied.
    assert!((5..=32).contains(&total), "{refused:?}");
    assert!(
        refused.keys().all(|c| [0, 429, 500, 503, 504].contains(c)),
        "{refused:?}"
    );
    let metrics = client
        .request_text(
            http::Request::get("/metrics")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("/metrics answers");
    let counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("steadfast_sandbox_hostile_injected_total{"))
        .filter(|l| l.contains("verb=\"list\",resource=\"nodes\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, total, "{metrics}");
    eprintln!("sandbox up --hostile 3: 100 node lists, refused {refused:?}");
    child.kill().await.expect("sandbox up stops");
}
