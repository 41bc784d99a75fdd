//! One scenario per fault, each ending with the cluster as it found it. The same scenarios run
//! on the sandbox and, ignored by default, on a real cluster.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use steadfast::fault::healing::HealingObserver;
use steadfast::fault::kube_undo::ZONE_OUTAGE_TAINT;
use steadfast::fault::node_cordon::NodeCordon;
use steadfast::fault::node_drain::NodeDrain;
use steadfast::fault::pod_evict::PodEvict;
use steadfast::fault::pod_kill::PodKill;
use steadfast::fault::zone_outage::ZoneOutage;
use steadfast::fault::{Effect, Fault, FaultError, RollbackOutcome, TargetKind, UndoAction};
use steadfast::spec::DurationSpec;
use steadfast::spec::fault::{
    NodeCordonSpec, NodeDrainSpec, NodeTargetSpec, PodEvictSpec, PodKillSpec, PodTargetSpec,
    SelectionMode, ZoneOutageSpec,
};
use steadfast::spec::safety::SafetySpec;

use super::support::{Env, eventually, plan_and_inject, rollback};

fn names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

fn count(effects: &[steadfast::fault::TargetEffect], pred: impl Fn(&Effect) -> bool) -> usize {
    effects.iter().filter(|e| pred(&e.effect)).count()
}

fn is_schedulable(node: &k8s_openapi::api::core::v1::Node) -> bool {
    !node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn has_steadfast_taint(node: &k8s_openapi::api::core::v1::Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == ZONE_OUTAGE_TAINT))
}

/// A taint someone else put on a node, which steadfast must leave alone.
const FOREIGN_TAINT: &str = "example.com/maintenance";

fn node_spec(name: &str) -> NodeTargetSpec {
    NodeTargetSpec {
        mode: SelectionMode::Names,
        names: vec![name.to_owned()],
        ..NodeTargetSpec::default()
    }
}

/// podKill: two `api` pods deleted, chosen repeatably, replaced and Ready again, with the
/// replacement times recorded. Namespaces are chosen by label to exercise that path.
pub async fn pod_kill_replaces_pods(env: &Env) {
    let spec = PodKillSpec {
        target: PodTargetSpec {
            namespace_selector: Some(format!("kubernetes.io/metadata.name={}", env.ns)),
            selector: Some("app=api".into()),
            mode: SelectionMode::Count,
            count: Some(2),
            ..PodTargetSpec::default()
        },
        grace_period: DurationSpec::from_secs(0),
    };
    let fault = PodKill::new("kill-api".into(), spec, env.context(env.safety()));
    let before = names(&env.ready_pods("app=api").await);
    let plan = fault.plan("run-kill", 0).await.expect("plan");
    let again = fault.plan("run-kill", 0).await.expect("plan again");
    assert_eq!(
        plan.targets, again.targets,
        "the same seed chooses the same pods"
    );
    assert_eq!(plan.targets.len(), 2);
    assert_eq!(plan.candidates, 3);
    assert!(plan.undo.is_empty(), "a kill has nothing to undo");
    for t in &plan.targets {
        assert!(t.node.is_some() && t.zone.is_some(), "{t:?}");
    }
    let observer = HealingObserver::start(&env.kube, &plan, Duration::from_secs(60))
        .await
        .expect("observer starts");
    let injection = fault.inject(&plan).await.expect("inject");
    assert_eq!(count(&injection.effects, |e| *e == Effect::Applied), 2);
    let evidence = observer.finish().await;
    assert!(evidence.healed && !evidence.timed_out, "{evidence:#?}");
    assert_eq!(evidence.pods.len(), 2);
    for p in &evidence.pods {
        assert!(p.disrupted, "{p:?}");
        let replacement = p.replacement.as_deref().expect("a replacement");
        assert!(!before.contains(replacement), "{replacement} is new");
        assert!(
            p.scheduled_after_ms.is_some() && p.ready_after_ms.is_some(),
            "{p:?}"
        );
        assert!(p.ready_after_ms >= p.scheduled_after_ms, "{p:?}");
    }
    let api = evidence
        .workloads
        .iter()
        .find(|w| w.deployment == "api")
        .expect("the api Deployment is followed");
    assert_eq!(api.desired, 3);
    assert!(!api.samples.is_empty());
    env.wait_ready("app=api", 3).await;
    let after = names(&env.pods("app=api").await);
    for t in &plan.targets {
        assert!(!after.contains(&t.name), "{} is gone", t.name);
    }
}

/// podEvict: evicting every `web` pod at once meets the budget `web` (minAvailable 5 of 6):
/// one eviction goes through, the others are reported blocked by that budget by name.
pub async fn pod_evict_meets_the_budget(env: &Env) {
    let spec = PodEvictSpec {
        target: PodTargetSpec {
            namespaces: vec![env.ns.clone()],
            selector: Some("app=web".into()),
            mode: SelectionMode::All,
            ..PodTargetSpec::default()
        },
        on_blocked: Default::default(),
    };
    let fault = PodEvict::new("evict-web".into(), spec, env.context(env.safety()));
    let (plan, injection) = plan_and_inject(&fault, "run-evict").await;
    assert_eq!(plan.targets.len(), 6);
    let applied = count(&injection.effects, |e| *e == Effect::Applied);
    let blocked = count(
        &injection.effects,
        |e| matches!(e, Effect::BlockedByBudget { budget } if budget == "web"),
    );
    assert!(applied >= 1 && blocked >= 4, "{:#?}", injection.effects);
    assert_eq!(applied + blocked, 6, "{:#?}", injection.effects);
    env.wait_ready("app=web", 6).await;
}

/// nodeCordon: the node is unschedulable, rollback makes it schedulable, a second rollback
/// finds nothing to do.
pub async fn node_cordon_and_rollback(env: &Env) {
    let node = env.node_of("app=api").await;
    let fault = NodeCordon::new(
        "cordon".into(),
        NodeCordonSpec {
            target: node_spec(&node),
        },
        env.context(env.safety()),
    );
    let (plan, injection) = plan_and_inject(&fault, "run-cordon").await;
    assert_eq!(
        plan.undo
            .iter()
            .map(|r| r.action.clone())
            .collect::<Vec<_>>(),
        vec![UndoAction::Uncordon { node: node.clone() }]
    );
    assert_eq!(injection.effects[0].effect, Effect::Applied);
    assert!(!is_schedulable(&env.node(&node).await));
    let first = rollback(env, &plan).await;
    assert!(
        matches!(first[0], RollbackOutcome::Restored { .. }),
        "{first:?}"
    );
    assert!(is_schedulable(&env.node(&node).await));
    let second = rollback(env, &plan).await;
    assert!(
        matches!(second[0], RollbackOutcome::AlreadyRestored { .. }),
        "{second:?}"
    );
}

/// nodeDrain: the node is cordoned and emptied of the namespace's pods (a DaemonSet pod
/// stays), the workloads heal elsewhere, rollback uncordons, twice is a no-op.
pub async fn node_drain_moves_pods(env: &Env) {
    let node = env.node_of("app=api").await;
    let daemon = if env.is_sandbox {
        Some(create_daemon_pod(env, &node).await)
    } else {
        None
    };
    let on_node = |pods: Vec<Pod>| -> Vec<String> {
        pods.into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str()))
            .filter_map(|p| p.metadata.name)
            .collect()
    };
    // DaemonSet pods (ours, and any the sandbox's DaemonSet controller adds for it) stay put.
    let is_daemon = |name: &String| Some(name) == daemon.as_ref() || name.starts_with("agent-");
    let victims: Vec<String> = on_node(env.pods("app").await)
        .into_iter()
        .filter(|name| !is_daemon(name))
        .collect();
    assert!(!victims.is_empty());
    let fault = NodeDrain::new(
        "drain".into(),
        NodeDrainSpec {
            target: node_spec(&node),
            timeout: DurationSpec::from_secs(30),
            on_blocked: Default::default(),
        },
        env.context(env.safety()),
    );
    let plan = fault.plan("run-drain", 0).await.expect("plan");
    let observer = HealingObserver::start(&env.kube, &plan, Duration::from_secs(60))
        .await
        .expect("observer");
    let injection = fault.inject(&plan).await.expect("inject");
    let node_effect = injection
        .effects
        .iter()
        .find(|e| e.target.kind == TargetKind::Node)
        .expect("node effect");
    assert_eq!(
        node_effect.effect,
        Effect::Applied,
        "{:#?}",
        injection.effects
    );
    let evicted: BTreeSet<&str> = injection
        .effects
        .iter()
        .filter(|e| e.target.kind == TargetKind::Pod && e.effect == Effect::Applied)
        .map(|e| e.target.name.as_str())
        .collect();
    for v in &victims {
        assert!(evicted.contains(v.as_str()), "{v} evicted: {evicted:?}");
    }
    assert!(!is_schedulable(&env.node(&node).await));
    eventually("the node emptied", Duration::from_secs(30), || async {
        let left = on_node(env.pods("app").await);
        left.iter().all(is_daemon).then_some(())
    })
    .await;
    let evidence = observer.finish().await;
    assert!(evidence.healed, "{evidence:#?}");
    assert_eq!(evidence.pods.len(), victims.len(), "{evidence:#?}");
    if let Some(daemon) = daemon {
        let api: Api<Pod> = Api::namespaced(env.raw.clone(), &env.ns);
        let pod = api.get(&daemon).await.expect("the DaemonSet pod stays");
        assert!(pod.metadata.deletion_timestamp.is_none());
        assert!(!evicted.contains(daemon.as_str()));
    }
    env.wait_ready("app=web", 6).await;
    env.wait_ready("app=api", 3).await;
    let first = rollback(env, &plan).await;
    assert!(
        matches!(first[0], RollbackOutcome::Restored { .. }),
        "{first:?}"
    );
    assert!(is_schedulable(&env.node(&node).await));
    let second = rollback(env, &plan).await;
    assert!(matches!(second[0], RollbackOutcome::AlreadyRestored { .. }));
}

/// A DaemonSet and one of its pods on `node` (the sandbox runs no DaemonSet controller).
async fn create_daemon_pod(env: &Env, node: &str) -> String {
    let sets: Api<k8s_openapi::api::apps::v1::DaemonSet> =
        Api::namespaced(env.raw.clone(), &env.ns);
    let ds = json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                          "spec": {"containers": [{"name": "a", "image": "agent"}]}}
        }
    });
    let ds = sets
        .create(
            &PostParams::default(),
            &serde_json::from_value(ds).expect("ds"),
        )
        .await
        .expect("daemonset");
    let pods: Api<Pod> = Api::namespaced(env.raw.clone(), &env.ns);
    let pod = json!({
        "metadata": {
            "name": "agent-1",
            "labels": {"app": "agent"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                  "uid": ds.metadata.uid, "controller": true}]
        },
        "spec": {"nodeName": node, "containers": [{"name": "a", "image": "agent"}]}
    });
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).expect("pod"),
    )
    .await
    .expect("daemon pod");
    "agent-1".into()
}

/// nodeDrain against a budget that allows no disruption: reported blocked with the budget's
/// name, and after rollback nothing is left cordoned.
pub async fn node_drain_blocked_by_budget(env: &Env) {
    env.create_budget("api-strict", "app=api", 3).await;
    let node = env.node_of("app=api").await;
    let fault = NodeDrain::new(
        "drain-blocked".into(),
        NodeDrainSpec {
            target: node_spec(&node),
            timeout: DurationSpec::from_secs(3),
            on_blocked: Default::default(),
        },
        env.context(env.safety()),
    );
    let (plan, injection) = plan_and_inject(&fault, "run-drain-blocked").await;
    let node_effect = injection
        .effects
        .iter()
        .find(|e| e.target.kind == TargetKind::Node)
        .expect("node effect");
    assert!(
        matches!(&node_effect.effect, Effect::BlockedByBudget { budget } if budget.contains("api-strict")),
        "{:#?}",
        injection.effects
    );
    assert!(
        injection
            .effects
            .iter()
            .any(|e| e.target.kind == TargetKind::Pod
                && e.effect
                    == Effect::BlockedByBudget {
                        budget: "api-strict".into()
                    }),
        "{:#?}",
        injection.effects
    );
    rollback(env, &plan).await;
    assert!(
        is_schedulable(&env.node(&node).await),
        "nothing is left cordoned"
    );
    env.delete_budget("api-strict").await;
    env.wait_ready("app=web", 6).await;
    env.wait_ready("app=api", 3).await;
}

/// zoneOutage: every node of a zone cordoned and tainted, the pods leave the zone and come
/// back Ready elsewhere; rollback removes only steadfast's taints and cordons, leaving a
/// foreign taint and an already-cordoned node as they were; a second rollback is a no-op.
pub async fn zone_outage_and_precise_rollback(env: &Env) {
    let (zone, nodes) = env.zone_with_pods().await;
    assert!(nodes.len() >= 2, "the scenario needs two nodes in {zone}");
    let (first, second) = (nodes[0].clone(), nodes[1].clone());
    env.edit_taints(&first, |taints| {
        taints.push(k8s_openapi::api::core::v1::Taint {
            key: FOREIGN_TAINT.into(),
            value: Some("yes".into()),
            effect: "PreferNoSchedule".into(),
            time_added: None,
        });
    })
    .await;
    let second_was_cordoned = !is_schedulable(&env.node(&second).await);
    env.patch_node(&second, json!({"spec": {"unschedulable": true}}))
        .await;
    let safety = SafetySpec {
        max_nodes: u32::try_from(nodes.len()).unwrap_or(u32::MAX),
        ..env.safety()
    };
    let fault = ZoneOutage::new(
        "zone".into(),
        ZoneOutageSpec {
            zone: zone.clone(),
            node_selector: None,
        },
        env.context(safety),
    );
    let (plan, injection) = plan_and_inject(&fault, "run-zone").await;
    let uncordons: Vec<&str> = plan
        .undo
        .iter()
        .filter_map(|r| match &r.action {
            UndoAction::Uncordon { node } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    assert!(uncordons.contains(&first.as_str()));
    assert!(
        !uncordons.contains(&second.as_str()),
        "it was cordoned already"
    );
    let taints = plan
        .undo
        .iter()
        .filter(|r| matches!(&r.action, UndoAction::RemoveTaint { taint, .. } if taint.value == "run-zone" && taint.effect == "NoExecute"))
        .count();
    assert_eq!(taints, nodes.len());
    assert_eq!(
        count(&injection.effects, |e| *e == Effect::Applied),
        nodes.len(),
        "{:#?}",
        injection.effects
    );
    for n in &nodes {
        let node = env.node(n).await;
        assert!(!is_schedulable(&node) && has_steadfast_taint(&node), "{n}");
    }
    eventually("the zone emptied", Duration::from_secs(60), || async {
        let in_zone = env
            .pods("app")
            .await
            .into_iter()
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some_and(|n| nodes.contains(n))
            })
            .count();
        (in_zone == 0).then_some(())
    })
    .await;
    env.wait_ready("app=web", 6).await;
    env.wait_ready("app=api", 3).await;

    let outcomes = rollback(env, &plan).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RollbackOutcome::Restored { .. })),
        "{outcomes:?}"
    );
    let a = env.node(&first).await;
    let b = env.node(&second).await;
    assert!(is_schedulable(&a), "steadfast's cordon is undone");
    assert!(!is_schedulable(&b), "a node cordoned before stays cordoned");
    assert!(!has_steadfast_taint(&a) && !has_steadfast_taint(&b));
    let foreign = a
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == FOREIGN_TAINT));
    assert!(foreign, "others' taints stay");
    let again = rollback(env, &plan).await;
    assert!(
        again
            .iter()
            .all(|o| matches!(o, RollbackOutcome::AlreadyRestored { .. })),
        "{again:?}"
    );
    env.edit_taints(&first, |taints| taints.retain(|t| t.key != FOREIGN_TAINT))
        .await;
    if !second_was_cordoned {
        env.patch_node(&second, json!({"spec": {"unschedulable": null}}))
            .await;
    }
}

/// The blast-radius caps refuse a choice over them, with the numbers, before touching anything.
pub async fn over_caps_are_refused(env: &Env) {
    let spec = PodKillSpec {
        target: PodTargetSpec {
            namespaces: vec![env.ns.clone()],
            selector: Some("app=web".into()),
            mode: SelectionMode::All,
            ..PodTargetSpec::default()
        },
        grace_period: DurationSpec::from_secs(0),
    };
    let safety = SafetySpec {
        allow_namespaces: vec![env.ns.clone()],
        ..SafetySpec::default()
    };
    let fault = PodKill::new("too-many".into(), spec, env.context(safety));
    match fault.plan("run-caps", 0).await {
        Err(FaultError::OverCaps(message)) => {
            assert!(message.contains("6 of 6"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        env.ready_pods("app=web").await.len(),
        6,
        "nothing was touched"
    );
}

/// Every scenario, in an order that leaves the environment whole between them.
pub async fn all(env: &Env) {
    over_caps_are_refused(env).await;
    pod_kill_replaces_pods(env).await;
    pod_evict_meets_the_budget(env).await;
    node_cordon_and_rollback(env).await;
    node_drain_blocked_by_budget(env).await;
    node_drain_moves_pods(env).await;
    zone_outage_and_precise_rollback(env).await;
    pod_network_latency_and_early_removal(env).await;
}

/// A podKill reads its change back (the pod terminating) after it acted, and the lost pod's
/// endpoint leaving the Service is reported as the detection, long before the grace period ends.
pub async fn pod_kill_is_confirmed_and_detected(env: &Env) {
    let grace = Duration::from_secs(5);
    let spec = PodKillSpec {
        target: PodTargetSpec {
            namespace_selector: Some(format!("kubernetes.io/metadata.name={}", env.ns)),
            selector: Some("app=api".into()),
            mode: SelectionMode::One,
            ..PodTargetSpec::default()
        },
        grace_period: DurationSpec(grace),
    };
    let inner = PodKill::new("kill-api".into(), spec, env.context(env.safety()));
    let fault = steadfast::fault::detected::Detected::new(
        std::sync::Arc::new(inner),
        env.kube.clone(),
        Duration::from_secs(30),
    );
    let plan = fault.plan("run-detect", 0).await.expect("plan");
    assert_eq!(plan.targets.len(), 1);
    let injected = std::time::SystemTime::now();
    let injection = fault.inject(&plan).await.expect("inject");
    assert_eq!(injection.effects[0].effect, Effect::Applied);
    let confirmation = fault
        .confirm(&plan, &injection, Duration::from_secs(10))
        .await;
    let steadfast::fault::Confirmation::Confirmed { at: confirmed } = confirmation else {
        panic!("the kill is confirmed: {confirmation:?}");
    };
    let detection = fault.await_detection(&plan, Duration::from_secs(30)).await;
    let steadfast::fault::Detection::Detected { at: detected } = detection else {
        panic!("the lost endpoint is seen leaving: {detection:?}");
    };
    let after = |at: std::time::SystemTime| at.duration_since(injected).expect("after injection");
    eprintln!(
        "podKill: confirmed {:?} and detected {:?} after the injection",
        after(confirmed),
        after(detected)
    );
    assert!(after(confirmed) < Duration::from_secs(10));
    assert!(
        after(detected) < grace,
        "the endpoint left before the grace period ended"
    );
    env.wait_ready("app=api", 3).await;
}

/// podNetworkLatency: the undo record names the pod and a removal container before anything
/// acts; the fault adds an ephemeral container holding the rule; rollback adds the removal
/// container, and a second rollback finds it there and does nothing.
pub async fn pod_network_latency_and_early_removal(env: &Env) {
    use steadfast::fault::Undoer;
    use steadfast::fault::net_script::NetRule;
    use steadfast::fault::pod_network::{PodNetworkFault, PodNetworkUndoer};
    let fault = PodNetworkFault::new(
        "slow".into(),
        steadfast::spec::FaultKind::PodNetworkLatency,
        PodTargetSpec {
            namespaces: vec![env.ns.clone()],
            selector: Some("app=api".into()),
            mode: SelectionMode::One,
            ..PodTargetSpec::default()
        },
        NetRule::Delay {
            delay: Duration::from_millis(100),
            jitter: Duration::ZERO,
            correlation: 0.0,
            to: vec![],
        },
        Duration::from_secs(60),
        steadfast::spec::fault::DEFAULT_NETWORK_IMAGE.into(),
        env.context(env.safety()),
    );
    let (plan, injection) = plan_and_inject(&fault, "run-net").await;
    assert_eq!(plan.undo.len(), 1, "{plan:?}");
    let UndoAction::RemovePodNetworkRule {
        pod,
        container,
        removal,
        ..
    } = plan.undo[0].action.clone()
    else {
        panic!("{plan:?}")
    };
    assert_eq!(injection.effects[0].effect, Effect::Applied);
    let pods: Api<Pod> = Api::namespaced(env.kube.raw().clone(), &env.ns);
    let names = |p: &Pod| -> Vec<String> {
        p.spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_ref())
            .into_iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    };
    let holder = pods.get(&pod).await.expect("pod");
    assert_eq!(names(&holder), vec![container.clone()]);
    let undoer = PodNetworkUndoer::new(env.kube.clone());
    assert!(undoer.handles(&plan.undo[0].action));
    let first = undoer.undo(&plan.undo[0]).await.expect("undo");
    assert!(
        matches!(first, RollbackOutcome::Restored { .. }),
        "{first:?}"
    );
    let after = pods.get(&pod).await.expect("pod");
    assert_eq!(names(&after), vec![container, removal]);
    let second = undoer.undo(&plan.undo[0]).await.expect("undo");
    assert!(
        matches!(second, RollbackOutcome::AlreadyRestored { .. }),
        "{second:?}"
    );
}
