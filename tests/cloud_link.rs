//! The sandbox linked to moto, hit by the real AWS faults and measured by the real HTTP probe:
//! an `azPartition` makes that zone's backends unreachable for its window and its rollback
//! heals them; an `ec2Terminate` is healed by the group, whose replacement node turns Ready
//! after the boot delay, and by the Deployment, whose pods come back elsewhere.
//!
//! Each test starts its own moto server and sandbox (the shipped topology) and skips loudly
//! when moto is not installed. The two run one after the other: their timings are the point.

mod support;

#[path = "cloud_link/cloud.rs"]
mod cloud;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloud::{Cloud, MIRROR_POLL_MS, PerBackend, ready};
use steadfast::fault::aws_undo::AwsUndoer;
use steadfast::fault::az_partition::AzPartitionFault;
use steadfast::fault::ec2_terminate::Ec2TerminateFault;
use steadfast::fault::healing::HealingObserver;
use steadfast::fault::{Effect, Fault, Healing, RollbackOutcome, TargetKind, Undoer};
use steadfast::measure::TimeWindow;
use steadfast::plan::Caps;
use steadfast::probe::http::{
    ConnectionMode, DirectTransport, DirectTransportConfig, Endpoint, HttpProbeConfig,
    run_per_endpoint,
};
use steadfast::spec::fault::{AzPartitionSpec, Ec2TerminateSpec, InstanceTargetSpec};
use steadfast::spec::{DurationSpec, Percent};
use tokio_util::sync::CancellationToken;

/// The two tests measure time; running them side by side on two cores would measure each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bound on one mirror pass, in ms: seven sequential moto calls (instances, then per zone the
/// group and the subnet's ACL), each well under 150 ms even on a loaded two-core machine.
const MIRROR_PASS_MS: u64 = 1_000;
/// Longest time from a change in moto to the sandbox acting on it: a poll plus a whole pass.
const LINK_LAG: Duration = Duration::from_millis(MIRROR_POLL_MS + MIRROR_PASS_MS);
/// A partitioned sandbox backend looks at its partition flag this often before answering.
const BACKEND_RECHECK: Duration = Duration::from_millis(100);
/// The zone the partition cuts, as in `experiments/sandbox/az-partition.yaml`.
const CUT_ZONE: &str = "us-east-1a";
/// The zone whose instance is terminated, as in `experiments/sandbox/ec2-terminate.yaml`.
const TERMINATE_ZONE: &str = "us-east-1b";
/// Per-backend probe rate.
const PROBE_RATE: f64 = 50.0;
/// Per-attempt timeout: an answer that comes later is a failure. A request held by the
/// partition is answered as soon as it lifts, so attempts due less than this before the heal
/// succeed; it shortens the measured outage by up to this much.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Probing before the partition, its window, and probing after the rollback.
const BEFORE: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(8);
const AFTER: Duration = Duration::from_secs(4);

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_cuts_the_zone_backends_for_its_window_and_rollback_heals_them() {
    let _serial = SERIAL.lock().await;
    let Some(cloud) = Cloud::start().await else {
        return;
    };
    let backends = cloud.web_backends().await;
    let cut: Vec<&Endpoint> = backends
        .iter()
        .filter(|(zone, _, _)| zone == CUT_ZONE)
        .map(|(_, _, e)| e)
        .collect();
    assert!(!cut.is_empty(), "{CUT_ZONE} runs web pods: {backends:?}");
    assert!(cut.len() < backends.len(), "other zones run web pods too");
    let before = cloud.subnet_acls().await;

    let fault = AzPartitionFault::new(
        "partition-a",
        AzPartitionSpec {
            zone: CUT_ZONE.into(),
            exclude_subnet_tags: BTreeMap::new(),
        },
        cloud.context(),
    );
    let plan = fault.plan("cloud-link", 0).await.expect("a plan");
    assert_eq!(
        plan.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
        vec![&cloud.link.resources.subnets[CUT_ZONE]]
    );
    assert_eq!(plan.undo.len(), 1, "the undo is recorded before acting");
    let undoer = AwsUndoer::with_clients(cloud.moto.options(), cloud.clients.clone());

    let endpoints: Vec<Endpoint> = backends.iter().map(|(_, _, e)| e.clone()).collect();
    let mut probe = HttpProbeConfig::get(endpoints[0].uri.clone(), PROBE_RATE);
    probe.timeout = PROBE_TIMEOUT;
    probe.duration = Some(BEFORE + WINDOW + AFTER);
    let transport = Arc::new(
        DirectTransport::new(DirectTransportConfig {
            connection: ConnectionMode::KeepAlive,
            ..DirectTransportConfig::default()
        })
        .unwrap(),
    );
    let sink = Arc::new(PerBackend::default());
    let origin = Instant::now();
    let probing = run_per_endpoint(
        &probe,
        &endpoints,
        transport,
        origin,
        CancellationToken::new(),
        sink.clone(),
    );
    let script = async {
        tokio::time::sleep_until((origin + BEFORE).into()).await;
        let inject_start = Instant::now();
        let injection = fault.inject(&plan).await.expect("the partition applies");
        let inject_end = Instant::now();
        assert!(
            injection
                .effects
                .iter()
                .all(|e| e.effect == Effect::Applied),
            "{injection:?}"
        );
        tokio::time::sleep_until((inject_end + WINDOW).into()).await;
        let undo_start = Instant::now();
        let outcome = undoer.undo(&plan.undo[0]).await.expect("the rollback");
        let undo_end = Instant::now();
        (inject_start, inject_end, undo_start, undo_end, outcome)
    };
    let (stats, (inject_start, inject_end, undo_start, undo_end, outcome)) =
        tokio::time::timeout(Duration::from_secs(90), async {
            tokio::join!(probing, script)
        })
        .await
        .expect("the partition run ends");
    let stats = stats.expect("the probes run");
    assert!(stats.iter().all(|s| s.lost == 0), "no sample lost");
    assert!(
        matches!(outcome, RollbackOutcome::Restored { .. }),
        "{outcome:?}"
    );

    // Every subnet is back on its original ACL and no steadfast ACL remains.
    assert_eq!(cloud.subnet_acls().await, before);
    assert!(cloud.steadfast_acls().await.is_empty());

    // The partition was certainly in place between the end of inject and the start of the
    // rollback, and at most from the start of inject to the end of the rollback.
    let offset = |at: Instant| at - origin;
    let inner = undo_start - inject_end;
    let outer = undo_end - inject_start;
    let interval = Duration::from_secs_f64(1.0 / PROBE_RATE);
    // The probes have stopped: take the stores out rather than hold the lock.
    let stores = std::mem::take(&mut *sink.0.lock().unwrap());
    eprintln!(
        "partition of {CUT_ZONE}: window {:.3} s (ACL swapped within {:.3} s, restored within {:.3} s)",
        secs(inner),
        secs(inject_end - inject_start),
        secs(undo_end - undo_start)
    );
    for (zone, node, endpoint) in &backends {
        let store = &stores[&*endpoint.name];
        let all = store.window(store.covered());
        if zone != CUT_ZONE {
            let availability = all.availability.unwrap();
            eprintln!(
                "  {zone} {}: availability {:.2} % over {} attempts",
                endpoint.name,
                availability * 100.0,
                all.attempts
            );
            assert!(
                availability >= 0.99,
                "{} in {zone} (node {node}) lost more than 1 %: {all:?}",
                endpoint.name
            );
            continue;
        }
        let outage = store
            .longest_outage(store.covered())
            .unwrap_or_else(|| panic!("{} never went down: {all:?}", endpoint.name));
        let shortest = inner.saturating_sub(LINK_LAG + PROBE_TIMEOUT);
        let longest = outer + LINK_LAG + BACKEND_RECHECK + interval;
        eprintln!(
            "  {zone} {}: measured outage {:.3} s vs window {:.3} s (error {:+.3} s; allowed {:.3}..{:.3} s), \
             {:.3}..{:.3} s after the probe began",
            endpoint.name,
            secs(outage.length),
            secs(inner),
            secs(outage.length) - secs(inner),
            secs(shortest),
            secs(longest),
            secs(outage.start),
            secs(outage.end)
        );
        assert!(outage.recovered, "{outage:?}");
        // Down within the link's lag of the swap; down until the rollback, except attempts due
        // within the probe timeout before it, which the heal answers in time.
        assert!(
            outage.start <= offset(inject_end) + LINK_LAG + interval,
            "{} went down late: {outage:?}",
            endpoint.name
        );
        assert!(
            outage.end >= offset(undo_start).saturating_sub(PROBE_TIMEOUT),
            "{} answered during the partition: {outage:?}",
            endpoint.name
        );
        assert!(
            outage.end <= offset(undo_end) + LINK_LAG + BACKEND_RECHECK + interval,
            "{} healed late: {outage:?}",
            endpoint.name
        );
        // Hence the length: the window, less up to a link lag (the swap seen late, the restore
        // seen early) and the probe timeout, plus up to a link lag, a backend recheck and an
        // interval (the other way round).
        assert!(outage.length >= shortest, "{outage:?}");
        assert!(outage.length <= longest, "{outage:?}");
        // It answers again, as well as the zones that were never cut, once the heal has
        // reached it.
        let healed = offset(undo_end) + LINK_LAG + BACKEND_RECHECK;
        let after = store.window(TimeWindow::new(healed, store.covered().end));
        assert!(after.attempts >= 50, "{after:?}");
        assert!(
            after.availability.unwrap() >= 0.99,
            "{} after the heal: {after:?}",
            endpoint.name
        );
    }
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_node_is_replaced_after_the_boot_delay_and_its_pods_heal() {
    let _serial = SERIAL.lock().await;
    let Some(cloud) = Cloud::start().await else {
        return;
    };
    let boot_delay = cloud.sandbox.timing().node_boot_delay;
    // A node of the zone that runs web pods, so the pods' healing is observed too.
    let backends = cloud.web_backends().await;
    let (_, victim_node, _) = backends
        .iter()
        .find(|(zone, _, _)| zone == TERMINATE_ZONE)
        .unwrap_or_else(|| panic!("no web pod in {TERMINATE_ZONE}: {backends:?}"))
        .clone();
    let nodes_before = cloud.nodes().await;
    let victim_instance = nodes_before
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(victim_node.as_str()))
        .and_then(|n| n.spec.as_ref()?.provider_id.clone())
        .and_then(|p| p.rsplit('/').next().map(str::to_owned))
        .expect("the node names its instance");
    let names_before: BTreeSet<String> = nodes_before
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();

    let fault = Ec2TerminateFault::new(
        "terminate-one",
        Ec2TerminateSpec {
            target: InstanceTargetSpec {
                instance_ids: vec![victim_instance.clone()],
                ..InstanceTargetSpec::default()
            },
            allow_standalone: false,
            replacement_timeout: DurationSpec::from_secs(45),
        },
        cloud.context(),
        Caps {
            max_objects: 1,
            max_percent: Percent::new(100.0),
        },
        7,
    );
    let plan = fault.plan("cloud-link", 0).await.expect("a plan");
    assert_eq!(plan.targets.len(), 1);
    let target = &plan.targets[0];
    assert_eq!(target.kind, TargetKind::Instance);
    assert_eq!(target.name, victim_instance);
    assert_eq!(target.node.as_deref(), Some(victim_node.as_str()));
    let observer = HealingObserver::start(&cloud.kube, &plan, Duration::from_secs(60))
        .await
        .expect("the pods' healing is watched");

    let inject_start = Instant::now();
    let injection = fault.inject(&plan).await.expect("the termination");
    let inject_end = Instant::now();
    assert_eq!(
        injection.effects[0].effect,
        Effect::Applied,
        "{injection:?}"
    );

    // Watch the nodes ourselves: when the replacement appears and when it turns Ready.
    let watch = async {
        let mut joined: Option<(String, Instant)> = None;
        loop {
            assert!(
                inject_end.elapsed() < Duration::from_secs(45),
                "no Ready replacement node within 45 s"
            );
            for node in cloud.nodes().await {
                let name = node.metadata.name.clone().unwrap_or_default();
                if names_before.contains(&name) {
                    continue;
                }
                if joined.is_none() {
                    joined = Some((name.clone(), Instant::now()));
                }
                if ready(&node) {
                    let (first, at) = joined.clone().unwrap();
                    assert_eq!(first, name, "one replacement node");
                    return (name, at, Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ((replacement, joined_at, ready_at), report) =
        tokio::join!(watch, fault.await_replacement(&injection));
    let report = report.expect("the self-healing check runs");
    let healing = fault
        .await_healing(&plan, &injection, Duration::from_secs(45))
        .await;
    let pods = observer.finish().await;

    let replaced = ready_at - inject_start;
    let call = inject_end - inject_start;
    let reported = report.replacements[0]
        .replaced_after_seconds
        .expect("a replacement time");
    eprintln!(
        "ec2Terminate of {victim_instance} ({victim_node}): replacement node {replacement} joined after {:.3} s, \
         Ready after {:.3} s (observed every 50 ms) vs boot delay {:.3} s; the check reported {reported:.3} s",
        secs(joined_at - inject_start),
        secs(replaced),
        secs(boot_delay)
    );
    // Ready no sooner than the boot delay after the instance launched (which is after the
    // terminate call began), and no later than the link's lag, a kubelet heartbeat (200 ms)
    // and our 50 ms polling beyond it.
    assert!(replaced >= boot_delay, "{replaced:?} < {boot_delay:?}");
    let bound = boot_delay + LINK_LAG + Duration::from_millis(500);
    assert!(replaced <= bound, "{replaced:?} > {bound:?}");

    // The self-healing check: the group whole again and the replacement's node Ready. It times
    // from the end of the terminate call, which the launch may precede by the call's length;
    // it polls every 200 ms.
    assert!(report.checked && report.healed, "{report:#?}");
    let r = &report.replacements[0];
    assert_eq!(r.terminated_instance, victim_instance);
    let new_instance = r
        .replacement_instance
        .as_deref()
        .expect("the group launched one");
    assert_ne!(
        new_instance, victim_instance,
        "a new instance, not the old one"
    );
    assert_eq!(r.node.as_deref(), Some(replacement.as_str()));
    assert_eq!(r.replacement_zone.as_deref(), Some(TERMINATE_ZONE));
    assert!(
        reported + secs(call) >= secs(boot_delay),
        "reported {reported} s"
    );
    assert!(
        reported <= secs(bound) + 0.2,
        "reported {reported} s > {bound:?}"
    );
    for group in &report.groups {
        assert_eq!(group.in_service, group.desired_capacity, "{group:?}");
    }
    assert!(matches!(healing, Healing::Healed { .. }), "{healing:?}");

    // The pods of the lost node were replaced and Ready again (after the node was declared
    // gone: the monitor grace period).
    eprintln!(
        "pods of {victim_node}: {} disrupted, slowest Ready again after {:?} ms",
        pods.pods.len(),
        pods.pods.iter().filter_map(|p| p.ready_after_ms).max()
    );
    assert!(!pods.pods.is_empty(), "{pods:#?}");
    assert!(pods.healed && !pods.timed_out, "{pods:#?}");
    for pod in &pods.pods {
        assert!(pod.disrupted, "{pod:?}");
        let node = pod.replacement_node.as_deref().expect("a replacement node");
        assert_ne!(node, victim_node, "{pod:?}");
    }
    assert!(
        cloud
            .nodes()
            .await
            .iter()
            .all(|n| n.metadata.name.as_deref() != Some(victim_node.as_str())),
        "the terminated instance's node is gone"
    );
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_is_detected_when_the_zone_nodes_turn_not_ready_after_the_monitor_grace() {
    let _serial = SERIAL.lock().await;
    let Some(cloud) = Cloud::start().await else {
        return;
    };
    // The monitor grace of the topology this sandbox runs (experiments/sandbox/topology.yaml).
    let grace = cloud.sandbox.timing().node_monitor_grace_period;
    let fault = steadfast::fault::detected::Detected::new(
        Arc::new(AzPartitionFault::new(
            "partition-a",
            AzPartitionSpec {
                zone: CUT_ZONE.into(),
                exclude_subnet_tags: BTreeMap::new(),
            },
            cloud.context(),
        )),
        cloud.kube.clone(),
        grace * 3,
    );
    let plan = fault.plan("cloud-detect", 0).await.expect("a plan");
    let undoer = AwsUndoer::with_clients(cloud.moto.options(), cloud.clients.clone());
    let injected = std::time::SystemTime::now();
    let injection = fault.inject(&plan).await.expect("the partition applies");
    let confirmation = fault
        .confirm(&plan, &injection, Duration::from_secs(10))
        .await;
    let detection = fault.await_detection(&plan, grace * 3).await;
    let outcome = undoer.undo(&plan.undo[0]).await.expect("the rollback");
    assert!(
        matches!(outcome, RollbackOutcome::Restored { .. }),
        "{outcome:?}"
    );
    let steadfast::fault::Confirmation::Confirmed { at: confirmed } = confirmation else {
        panic!("the subnet is on the deny-all ACL: {confirmation:?}");
    };
    assert!(confirmed >= injected);
    let steadfast::fault::Detection::Detected { at } = detection else {
        panic!("the zone's nodes turn NotReady: {detection:?}");
    };
    let after = at
        .duration_since(injected)
        .expect("detected after the injection");
    eprintln!(
        "partition of {CUT_ZONE}: confirmed after {:.3} s, detected after {:.3} s (monitor grace {:.0} s)",
        secs(confirmed.duration_since(injected).unwrap()),
        secs(after),
        secs(grace)
    );
    // The zone's kubelets last renewed their Leases up to one renew interval before the cut,
    // so, as on a real cluster, the grace runs out between grace − renew interval and grace
    // (plus the monitor's period) after it.
    let renew = cloud.sandbox.timing().lease_renew_interval;
    assert!(
        after >= grace - renew - Duration::from_millis(100)
            && after <= grace + Duration::from_secs(2),
        "detected {after:?} after the injection, monitor grace {grace:?}, lease renewed every {renew:?}"
    );
    cloud.stop().await;
}
