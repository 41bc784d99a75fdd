//! The same scenarios against the cluster `KUBECONFIG` points at, each in a fresh namespace that
//! is deleted afterwards. They cordon, drain and taint real nodes: use a disposable cluster.
//! Run with `cargo test --test kube_faults -- --ignored`.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::scenarios;
use super::support::Env;

/// Runs a scenario in a fresh namespace and deletes it afterwards, also when the scenario fails.
async fn with_namespace(scenario: impl for<'a> FnOnce(&'a Env) -> BoxFuture<'a, ()>) {
    let env = Env::cluster().await;
    let outcome = AssertUnwindSafe(scenario(&env)).catch_unwind().await;
    env.teardown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster"]
async fn cluster_pod_kill_deletes_and_the_deployment_replaces() {
    with_namespace(|env| Box::pin(scenarios::pod_kill_replaces_pods(env))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster"]
async fn cluster_pod_evict_reports_the_blocking_budget_by_name() {
    with_namespace(|env| Box::pin(scenarios::pod_evict_meets_the_budget(env))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster"]
async fn cluster_node_cordon_rolls_back_and_a_second_rollback_is_a_no_op() {
    with_namespace(|env| Box::pin(scenarios::node_cordon_and_rollback(env))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster"]
async fn cluster_node_drain_evicts_and_rolls_back() {
    with_namespace(|env| Box::pin(scenarios::node_drain_moves_pods(env))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster"]
async fn cluster_node_drain_blocked_by_a_budget_names_it_and_leaves_nothing_cordoned() {
    with_namespace(|env| Box::pin(scenarios::node_drain_blocked_by_budget(env))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster"]
async fn cluster_zone_outage_empties_the_zone_and_rolls_back_precisely() {
    with_namespace(|env| Box::pin(scenarios::zone_outage_and_precise_rollback(env))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster"]
async fn cluster_over_caps_choices_are_refused_with_numbers() {
    with_namespace(|env| Box::pin(scenarios::over_caps_are_refused(env))).await;
}
