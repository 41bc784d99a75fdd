//! The scenarios against the sandbox, one test per fault, plus the RBAC check that runs them
//! all through one recording client.

use steadfast::infra::kube::rbac;

use super::scenarios;
use super::support::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_kill_deletes_and_the_deployment_replaces() {
    let env = Env::sandbox().await;
    scenarios::pod_kill_replaces_pods(&env).await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_evict_reports_the_blocking_budget_by_name() {
    let env = Env::sandbox().await;
    scenarios::pod_evict_meets_the_budget(&env).await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_cordon_rolls_back_and_a_second_rollback_is_a_no_op() {
    let env = Env::sandbox().await;
    scenarios::node_cordon_and_rollback(&env).await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_drain_evicts_all_but_daemonset_pods_and_rolls_back() {
    let env = Env::sandbox().await;
    scenarios::node_drain_moves_pods(&env).await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_drain_blocked_by_a_budget_names_it_and_leaves_nothing_cordoned() {
    let env = Env::sandbox().await;
    scenarios::node_drain_blocked_by_budget(&env).await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_outage_empties_the_zone_and_rollback_removes_only_steadfasts_changes() {
    let env = Env::sandbox().await;
    scenarios::zone_outage_and_precise_rollback(&env).await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_caps_choices_are_refused_with_numbers() {
    let env = Env::sandbox().await;
    scenarios::over_caps_are_refused(&env).await;
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_network_latency_journals_an_early_removal_that_rollback_runs_once() {
    let env = Env::sandbox().await;
    scenarios::pod_network_latency_and_early_removal(&env).await;
    env.teardown().await;
}

/// The RBAC list is exactly what the faults, their rollback and the healing watches use: run
/// every scenario through one recording client and compare both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_rules_match_the_requests_the_faults_make() {
    let env = Env::sandbox().await;
    scenarios::all(&env).await;
    let used = env.kube.access_log().expect("recording is on").snapshot();
    let listed = rbac::fault_accesses();
    let missing: Vec<String> = used.difference(&listed).map(|a| a.to_string()).collect();
    let unused: Vec<String> = listed.difference(&used).map(|a| a.to_string()).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "used but not in rbac::RULES: {missing:?}\nin rbac::RULES but never used: {unused:?}"
    );
    env.teardown().await;
}

/// The rate limit sits on the client's request stack: with QPS 10 and burst 1, eleven calls
/// cannot take less than a second however fast the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_waits_for_the_shared_rate_limit() {
    use std::time::{Duration, Instant};
    use steadfast::infra::kube::{KubeClient, KubeOptions};
    let env = Env::sandbox().await;
    let (_, nodes) = env.zone_with_pods().await;
    let limited = KubeClient::connect(&KubeOptions {
        kubeconfig: env.kubeconfig(),
        qps: 10,
        burst: 1,
        ..KubeOptions::default()
    })
    .await
    .expect("client");
    let start = Instant::now();
    for _ in 0..11 {
        assert!(limited.get_node(&nodes[0]).await.expect("get").is_some());
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
    env.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_kill_is_confirmed_after_injection_and_its_endpoint_removal_detected() {
    let env = Env::sandbox().await;
    scenarios::pod_kill_is_confirmed_and_detected(&env).await;
    env.teardown().await;
}
