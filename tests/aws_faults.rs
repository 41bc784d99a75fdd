//! The AWS faults and the zone model against moto: each test starts its own moto server on a
//! loopback port, builds the topology of `aws_faults/world.rs` and drives the faults through
//! the same `Fault` and `Undoer` traits the engine uses.

mod support;

#[path = "aws_faults/world.rs"]
mod world;

use std::sync::Arc;

use chrono::Utc;
use steadfast::fault::aws_undo::{AwsUndoer, sweep_network_acls};
use steadfast::fault::az_partition::AzPartitionFault;
use steadfast::fault::ec2_stop::Ec2StopFault;
use steadfast::fault::ec2_terminate::Ec2TerminateFault;
use steadfast::fault::{
    Effect, Fault, FaultError, FaultPlan, RollbackOutcome, TargetKind, UndoAction, Undoer,
};
use steadfast::infra::nodes::StaticNodes;
use steadfast::journal::{FileJournal, JournalEntry, pending, read_entries};
use steadfast::spec::DurationSpec;
use steadfast::spec::fault::{
    AzPartitionSpec, Ec2StopSpec, Ec2TerminateSpec, InstanceTargetSpec, SelectionMode,
};
use world::{GROUP_SIZE, KEEP_TAG, POOL_LABEL, World, ZONES, caps, group};

macro_rules! world {
    () => {
        match World::build().await {
            Some(world) => world,
            None => return,
        }
    };
}

fn terminate_spec(target: InstanceTargetSpec) -> Ec2TerminateSpec {
    Ec2TerminateSpec {
        target,
        allow_standalone: false,
        replacement_timeout: DurationSpec::from_secs(30),
    }
}

fn target_ids(plan: &FaultPlan) -> Vec<String> {
    plan.targets.iter().map(|t| t.name.clone()).collect()
}

/// Terminates through the fault and runs the self-healing check; returns the plan and report.
async fn terminate_and_check(
    fault: &Ec2TerminateFault,
    world: &World,
) -> (
    FaultPlan,
    steadfast::fault::ec2_terminate::SelfHealingReport,
) {
    let plan = fault.plan("run-1", 0).await.expect("plan");
    assert!(plan.undo.is_empty(), "termination cannot be undone");
    assert_eq!(
        plan.irreversible.len(),
        plan.targets.len(),
        "every termination is flagged irreversible"
    );
    let injection = fault.inject(&plan).await.expect("inject");
    assert!(
        injection
            .effects
            .iter()
            .all(|e| e.effect == Effect::Applied),
        "{injection:?}"
    );
    let report = fault.await_replacement(&injection).await.expect("check");
    for id in target_ids(&plan) {
        assert_eq!(world.state(&id).await, "terminated", "{id}");
    }
    (plan, report)
}

fn assert_healed(
    report: &steadfast::fault::ec2_terminate::SelfHealingReport,
    terminated: &[String],
) {
    assert!(report.checked && report.healed, "{report:#?}");
    assert_eq!(report.replacements.len(), terminated.len());
    for r in &report.replacements {
        assert!(terminated.contains(&r.terminated_instance));
        let replacement = r.replacement_instance.as_deref().expect("a replacement");
        assert!(
            !terminated.iter().any(|t| t == replacement),
            "a terminated instance cannot be its own replacement"
        );
        assert!(r.replaced_after_seconds.is_some_and(|s| s >= 0.0), "{r:?}");
    }
    let mut replacements: Vec<_> = report
        .replacements
        .iter()
        .map(|r| r.replacement_instance.clone())
        .collect();
    replacements.dedup();
    assert_eq!(
        replacements.len(),
        terminated.len(),
        "one replacement per instance"
    );
    for g in &report.groups {
        assert_eq!(g.in_service, g.desired_capacity, "{g:?}");
    }
}

#[tokio::test]
async fn the_zone_map_describes_the_moto_topology() {
    let world = world!();
    let map = world
        .context(Some(world.mirror_nodes()))
        .zone_map()
        .await
        .unwrap();
    assert_eq!(map.vpc_id.as_deref(), Some(world.vpc_id.as_str()));
    assert_eq!(
        map.zones.keys().cloned().collect::<Vec<_>>(),
        ZONES.to_vec()
    );
    for zone in ZONES {
        let view = &map.zones[zone];
        assert_eq!(view.groups, vec![group(zone)]);
        let grouped: Vec<_> = view
            .instances
            .iter()
            .filter(|i| i.group.as_deref() == Some(group(zone).as_str()))
            .collect();
        assert_eq!(grouped.len(), GROUP_SIZE as usize, "{zone}");
        assert!(
            view.subnets
                .iter()
                .any(|s| s.subnet_id == world.subnets[zone])
        );
        assert_eq!(
            view.nodes.len(),
            view.instances.len(),
            "every running instance backs a node"
        );
        for instance in &view.instances {
            assert_eq!(
                instance.node.as_deref(),
                Some(format!("node-{}", instance.instance_id).as_str())
            );
        }
        assert_eq!(map.groups[&group(zone)].desired_capacity, GROUP_SIZE as u32);
    }
    let standalone = map.instance(&world.standalone).unwrap();
    assert_eq!(standalone.group, None);
    assert_eq!(map.subnets_in(ZONES[0]).len(), 2);
    let json = serde_json::to_value(&map).unwrap();
    assert_eq!(json["vpcId"], world.vpc_id);
    assert!(json["zones"][ZONES[1]]["instances"][0]["instanceId"].is_string());
}

#[tokio::test]
async fn terminating_by_tag_is_healed_by_the_group() {
    let world = world!();
    let spec = terminate_spec(InstanceTargetSpec {
        tags: [("team".to_owned(), "web".to_owned())].into(),
        ..InstanceTargetSpec::default()
    });
    let fault = Ec2TerminateFault::new("kill-web", spec, world.context(None), caps(1), 42);
    let (plan, report) = terminate_and_check(&fault, &world).await;
    assert_eq!(
        plan.candidates,
        ZONES.len() * GROUP_SIZE as usize,
        "the bastion carries no team tag"
    );
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].kind, TargetKind::Instance);
    assert_healed(&report, &target_ids(&plan));
    let r = &report.replacements[0];
    let group_name = r.group.clone().unwrap();
    let members = world.in_service(&group_name).await;
    assert!(members.contains(r.replacement_instance.as_ref().unwrap()));
    assert!(!members.contains(&r.terminated_instance));
}

#[tokio::test]
async fn terminating_a_whole_group_replaces_every_instance() {
    let world = world!();
    let by_group = InstanceTargetSpec {
        auto_scaling_groups: vec![group(ZONES[1])],
        mode: SelectionMode::All,
        ..InstanceTargetSpec::default()
    };
    let over = Ec2TerminateFault::new(
        "group",
        terminate_spec(by_group.clone()),
        world.context(None),
        caps(1),
        1,
    );
    assert!(
        matches!(over.plan("run-1", 0).await, Err(FaultError::OverCaps(_))),
        "two instances exceed a cap of one"
    );
    let before = world.in_service(&group(ZONES[1])).await;
    let fault = Ec2TerminateFault::new(
        "group",
        terminate_spec(by_group),
        world.context(None),
        caps(2),
        1,
    );
    let (plan, report) = terminate_and_check(&fault, &world).await;
    let mut chosen = target_ids(&plan);
    chosen.sort();
    let mut expected = before.clone();
    expected.sort();
    assert_eq!(chosen, expected);
    assert_healed(&report, &chosen);
    let after = world.in_service(&group(ZONES[1])).await;
    assert!(after.iter().all(|i| !before.contains(i)), "{after:?}");
}

#[tokio::test]
async fn terminating_by_zone_stays_in_the_zone() {
    let world = world!();
    let spec = terminate_spec(InstanceTargetSpec {
        zone: Some(ZONES[2].into()),
        mode: SelectionMode::Count,
        count: Some(1),
        ..InstanceTargetSpec::default()
    });
    let fault = Ec2TerminateFault::new("zone-c", spec, world.context(None), caps(1), 9);
    let (plan, report) = terminate_and_check(&fault, &world).await;
    assert_eq!(plan.candidates, GROUP_SIZE as usize);
    assert_eq!(plan.targets[0].zone.as_deref(), Some(ZONES[2]));
    assert_healed(&report, &target_ids(&plan));
    assert_eq!(
        report.replacements[0].replacement_zone.as_deref(),
        Some(ZONES[2])
    );
}

#[tokio::test]
async fn terminating_by_kubernetes_node_waits_for_the_replacement_node() {
    let world = world!();
    let spec = terminate_spec(InstanceTargetSpec {
        node_selector: Some(format!("{POOL_LABEL}={}", group(ZONES[0]))),
        ..InstanceTargetSpec::default()
    });
    let fault = Ec2TerminateFault::new(
        "node",
        spec,
        world.context(Some(world.mirror_nodes())),
        caps(1),
        3,
    );
    let (plan, report) = terminate_and_check(&fault, &world).await;
    assert_eq!(plan.candidates, GROUP_SIZE as usize);
    assert_eq!(
        plan.targets[0].node.as_deref(),
        Some(format!("node-{}", plan.targets[0].name).as_str())
    );
    assert_healed(&report, &target_ids(&plan));
    let r = &report.replacements[0];
    assert_eq!(
        r.node.as_deref(),
        Some(format!("node-{}", r.replacement_instance.as_ref().unwrap()).as_str())
    );
    assert!(r.node_ready_at.is_some());
}

#[tokio::test]
async fn a_replacement_node_that_never_turns_ready_fails_the_check() {
    let world = world!();
    let spec = Ec2TerminateSpec {
        replacement_timeout: DurationSpec::from_secs(1),
        ..terminate_spec(InstanceTargetSpec {
            auto_scaling_groups: vec![group(ZONES[0])],
            ..InstanceTargetSpec::default()
        })
    };
    // A cluster whose nodes never change: the replacement's node never appears.
    let frozen = Arc::new(StaticNodes::new(Vec::new()));
    let fault = Ec2TerminateFault::new("stuck", spec, world.context(Some(frozen)), caps(1), 5);
    let plan = fault.plan("run-1", 0).await.unwrap();
    let injection = fault.inject(&plan).await.unwrap();
    let report = fault.await_replacement(&injection).await.unwrap();
    assert!(report.checked && !report.healed, "{report:#?}");
    assert!(report.replacements[0].replacement_instance.is_some());
    assert_eq!(report.replacements[0].node_ready_at, None);
    assert!(report.waited_seconds >= 0.9, "{report:#?}");
}

#[tokio::test]
async fn a_standalone_instance_is_refused_without_the_opt_in() {
    let world = world!();
    let target = InstanceTargetSpec {
        instance_ids: vec![world.standalone.clone()],
        ..InstanceTargetSpec::default()
    };
    let refused = Ec2TerminateFault::new(
        "bastion",
        terminate_spec(target.clone()),
        world.context(None),
        caps(1),
        0,
    );
    match refused.plan("run-1", 0).await {
        Err(FaultError::Refused(message)) => {
            assert!(message.contains("allowStandalone"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(world.state(&world.standalone).await, "running");

    let allowed = Ec2TerminateFault::new(
        "bastion",
        Ec2TerminateSpec {
            allow_standalone: true,
            ..terminate_spec(target)
        },
        world.context(None),
        caps(1),
        0,
    );
    let plan = allowed.plan("run-1", 0).await.unwrap();
    assert!(
        plan.irreversible[0].contains("nothing replaces it"),
        "{plan:?}"
    );
    let injection = allowed.inject(&plan).await.unwrap();
    assert_eq!(injection.effects[0].effect, Effect::Applied);
    assert_eq!(world.state(&world.standalone).await, "terminated");
    let report = allowed.await_replacement(&injection).await.unwrap();
    assert!(report.healed, "no group to wait for");
    assert_eq!(report.replacements[0].group, None);
    assert_eq!(report.replacements[0].replacement_instance, None);
}

#[tokio::test]
async fn stopped_instances_start_again_and_a_second_rollback_is_a_no_op() {
    let world = world!();
    let spec = Ec2StopSpec {
        target: InstanceTargetSpec {
            instance_ids: vec![world.standalone.clone()],
            ..InstanceTargetSpec::default()
        },
    };
    let fault = Ec2StopFault::new("stop", spec, world.context(None), caps(1), 0);
    let plan = fault.plan("run-1", 0).await.unwrap();
    assert_eq!(
        plan.undo[0].action,
        UndoAction::StartInstances {
            region: "us-east-1".into(),
            instance_ids: vec![world.standalone.clone()],
        }
    );
    let injection = fault.inject(&plan).await.unwrap();
    assert_eq!(injection.effects[0].effect, Effect::Applied);
    assert_eq!(world.state(&world.standalone).await, "stopped");

    let undoer = AwsUndoer::with_clients(world.moto.options(), world.clients.clone());
    assert!(undoer.handles(&plan.undo[0].action));
    let first = undoer.undo(&plan.undo[0]).await.unwrap();
    assert!(
        matches!(first, RollbackOutcome::Restored { .. }),
        "{first:?}"
    );
    let state = world.state(&world.standalone).await;
    assert!(state == "pending" || state == "running", "{state}");
    let second = undoer.undo(&plan.undo[0]).await.unwrap();
    assert!(
        matches!(second, RollbackOutcome::AlreadyRestored { .. }),
        "{second:?}"
    );
}

fn partition_spec(zone: &str) -> AzPartitionSpec {
    AzPartitionSpec {
        zone: zone.into(),
        exclude_subnet_tags: [(KEEP_TAG.0.to_owned(), KEEP_TAG.1.to_owned())].into(),
    }
}

/// Plans and injects a partition of `zone`; returns the plan.
async fn partition(world: &World, zone: &str, run_id: &str) -> FaultPlan {
    let fault = AzPartitionFault::new("cut", partition_spec(zone), world.context(None));
    let plan = fault.plan(run_id, 0).await.unwrap();
    let injection = fault.inject(&plan).await.unwrap();
    assert!(
        injection
            .effects
            .iter()
            .all(|e| e.effect == Effect::Applied),
        "{injection:?}"
    );
    plan
}

#[tokio::test]
async fn a_partition_and_its_rollback_leave_every_subnet_on_its_original_acl() {
    let world = world!();
    let before = world.all_subnet_acls().await;
    let plan = partition(&world, ZONES[0], "run-p").await;
    assert_eq!(
        target_ids(&plan),
        vec![world.subnets[ZONES[0]].clone()],
        "the kept subnet is excluded"
    );
    assert_eq!(plan.candidates, 2);
    let UndoAction::RestoreNetworkAcls { original, .. } = &plan.undo[0].action else {
        panic!("{plan:?}")
    };
    assert_eq!(original[0].network_acl_id, before[&world.subnets[ZONES[0]]]);

    let during = world.all_subnet_acls().await;
    let steadfast = world.steadfast_acls().await;
    assert_eq!(steadfast.len(), 1);
    assert_eq!(during[&world.subnets[ZONES[0]]], steadfast[0]);
    assert_eq!(
        during[&world.kept_subnet], before[&world.kept_subnet],
        "excluded"
    );
    assert_eq!(
        during[&world.subnets[ZONES[1]]],
        before[&world.subnets[ZONES[1]]]
    );

    let again = AzPartitionFault::new("cut", partition_spec(ZONES[0]), world.context(None));
    assert!(
        matches!(again.plan("run-q", 0).await, Err(FaultError::Refused(_))),
        "a partitioned subnet is not partitioned twice"
    );

    let undoer = AwsUndoer::with_clients(world.moto.options(), world.clients.clone());
    let first = undoer.undo(&plan.undo[0]).await.unwrap();
    assert!(
        matches!(first, RollbackOutcome::Restored { .. }),
        "{first:?}"
    );
    assert_eq!(world.all_subnet_acls().await, before);
    assert!(world.steadfast_acls().await.is_empty());
    let second = undoer.undo(&plan.undo[0]).await.unwrap();
    assert!(
        matches!(second, RollbackOutcome::AlreadyRestored { .. }),
        "{second:?}"
    );
    assert_eq!(world.all_subnet_acls().await, before);
}

#[tokio::test]
async fn rollback_finds_the_subnet_after_its_association_id_changed() {
    let world = world!();
    let before = world.all_subnet_acls().await;
    let plan = partition(&world, ZONES[1], "run-a").await;
    let subnet = &world.subnets[ZONES[1]];
    let (acl, association) = world.subnet_acl(subnet).await;
    // Someone (or a retried call) re-associates the subnet: same ACL, new association id.
    world
        .ec2
        .replace_network_acl_association()
        .association_id(&association)
        .network_acl_id(&acl)
        .send()
        .await
        .unwrap();
    let (_, changed) = world.subnet_acl(subnet).await;
    assert_ne!(changed, association);

    let undoer = AwsUndoer::with_clients(world.moto.options(), world.clients.clone());
    undoer.undo(&plan.undo[0]).await.unwrap();
    assert_eq!(world.all_subnet_acls().await, before);
    assert!(world.steadfast_acls().await.is_empty());
}

#[tokio::test]
async fn a_fresh_process_holding_only_the_journal_heals_a_partition() {
    let world = world!();
    let before = world.all_subnet_acls().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    {
        // The run: plan, journal the undo records (synced), inject — then it dies.
        let journal = FileJournal::open(&path).unwrap();
        let fault = AzPartitionFault::new("cut", partition_spec(ZONES[2]), world.context(None));
        let plan = fault.plan("run-j", 0).await.unwrap();
        for record in &plan.undo {
            journal.append(&JournalEntry::Undo(record.clone())).unwrap();
        }
        fault.inject(&plan).await.unwrap();
        drop(fault);
        drop(journal);
    }
    assert_ne!(world.all_subnet_acls().await, before, "partitioned");

    // A new process: only the journal file and fresh clients.
    let records = pending(&read_entries(&path).unwrap());
    assert_eq!(records.len(), 1);
    let undoer = AwsUndoer::new(world.moto.options());
    let journal = FileJournal::open(&path).unwrap();
    for record in &records {
        assert!(undoer.handles(&record.action));
        let outcome = undoer.undo(record).await.unwrap();
        journal
            .append(&JournalEntry::RolledBack {
                id: record.id.clone(),
                outcome,
                at: Utc::now(),
            })
            .unwrap();
    }
    assert_eq!(world.all_subnet_acls().await, before);
    assert!(world.steadfast_acls().await.is_empty());
    assert!(pending(&read_entries(&path).unwrap()).is_empty());
}

#[tokio::test]
async fn the_sweep_heals_partitions_when_the_journal_is_lost() {
    let world = world!();
    let before = world.all_subnet_acls().await;
    partition(&world, ZONES[0], "run-s1").await;
    partition(&world, ZONES[1], "run-s2").await;
    assert_eq!(world.steadfast_acls().await.len(), 2);

    let fresh = world.moto.clients().await;
    let mut swept = sweep_network_acls(&fresh.ec2, Some(&world.vpc_id))
        .await
        .unwrap();
    swept.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(swept.len(), 2);
    assert_eq!(swept[0].run_id.as_deref(), Some("run-s1"));
    assert_eq!(swept[1].restored[0].subnet_id, world.subnets[ZONES[1]]);
    assert_eq!(
        swept[1].restored[0].network_acl_id, before[&world.subnets[ZONES[1]]],
        "back on the custom ACL, not the default"
    );
    assert_eq!(world.all_subnet_acls().await, before);
    assert!(world.steadfast_acls().await.is_empty());
    assert!(
        sweep_network_acls(&fresh.ec2, Some(&world.vpc_id))
            .await
            .unwrap()
            .is_empty(),
        "a second sweep finds nothing"
    );
}

#[tokio::test]
async fn a_subnet_whose_original_acl_was_deleted_goes_back_to_the_default_acl() {
    let world = world!();
    let subnet = world.subnets[ZONES[1]].clone();
    let (custom, _) = world.subnet_acl(&subnet).await;
    let (default, _) = world.subnet_acl(&world.subnets[ZONES[0]]).await;
    assert_ne!(custom, default);
    let plan = partition(&world, ZONES[1], "run-d").await;
    world
        .ec2
        .delete_network_acl()
        .network_acl_id(&custom)
        .send()
        .await
        .unwrap();

    let undoer = AwsUndoer::with_clients(world.moto.options(), world.clients.clone());
    let outcome = undoer.undo(&plan.undo[0]).await.unwrap();
    assert!(
        matches!(&outcome, RollbackOutcome::Restored { detail } if detail.contains(&default)),
        "{outcome:?}"
    );
    assert_eq!(world.subnet_acl(&subnet).await.0, default);
    assert!(world.steadfast_acls().await.is_empty());
}

/// 20% throttling, 10% server errors and 5% delays on every call: a partition is applied once
/// (one ACL) and the undo applier restores it within the undo deadline, each call riding the
/// SDK's retries; the clients count every injected error.
#[tokio::test]
async fn a_partition_and_its_rollback_through_a_throttling_aws_act_once_and_finish_in_time() {
    use std::time::{Duration, Instant};
    use steadfast::infra::aws::{AwsClients, AwsContext, AwsOptions};
    use steadfast::journal::{Journal, RetryPolicy, UndoApplier};
    use support::aws_proxy::{AwsHostility, AwsProxy};

    let world = world!();
    let before = world.all_subnet_acls().await;
    let proxy = AwsProxy::start(
        &world.moto.endpoint,
        AwsHostility {
            seed: 7,
            throttling: 0.2,
            server_error: 0.1,
            delay: 0.05,
            max_delay: Duration::from_millis(200),
        },
    )
    .await;
    let options = AwsOptions {
        endpoint_url: Some(proxy.endpoint.clone()),
        ..world.moto.options()
    };
    let clients = AwsClients::connect(&options).await.unwrap();
    let context = AwsContext {
        clients: clients.clone(),
        ..world.context(None)
    };
    let fault = AzPartitionFault::new("cut", partition_spec(ZONES[0]), context);
    let plan = fault.plan("run-h", 0).await.unwrap();
    let injection = fault.inject(&plan).await.unwrap();
    assert!(
        injection
            .effects
            .iter()
            .all(|e| e.effect == Effect::Applied),
        "{injection:?}"
    );
    assert_eq!(world.steadfast_acls().await.len(), 1, "one ACL, not two");
    assert_eq!(proxy.carried_out("ec2:CreateNetworkAcl"), 1);

    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::local(FileJournal::open(&dir.path().join("journal.jsonl")).unwrap());
    journal
        .append(&JournalEntry::Undo(plan.undo[0].clone()))
        .await
        .unwrap();
    let undoer = AwsUndoer::with_clients(options.clone(), clients);
    let deadline = Duration::from_secs(120);
    let started = Instant::now();
    let report = UndoApplier::new(&undoer, &journal, RetryPolicy::within(deadline))
        .apply(&plan.undo[0])
        .await;
    let took = started.elapsed();
    assert!(report.applied(), "{report:?}");
    assert!(took < deadline, "{took:?}");
    assert_eq!(world.all_subnet_acls().await, before);
    assert!(world.steadfast_acls().await.is_empty());

    let injected = proxy.injected();
    let counted: u64 = options
        .calls
        .endpoint_calls()
        .iter()
        .map(|c| c.errors)
        .sum();
    eprintln!(
        "injected {injected} error(s), clients counted {counted}; rollback took {took:?} in {} attempt(s); {:?}",
        report.attempts,
        proxy.counts()
    );
    assert!(injected > 0, "{:?}", proxy.counts());
    assert_eq!(counted, injected, "every injected error is counted");
    assert_eq!(proxy.carried_out("ec2:CreateNetworkAcl"), 1);
    assert_eq!(proxy.carried_out("ec2:DeleteNetworkAcl"), 1);
}
