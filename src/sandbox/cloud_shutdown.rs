//! Stopped cloud instances: the machine runs no kubelet and no containers while stopped (its
//! backends refuse connections), it boots for the node boot delay once started, and the cloud node
//! lifecycle controller keeps the Node (only terminated instances lose theirs) but taints it
//! `node.cloudprovider.kubernetes.io/shutdown:NoSchedule` while it is not Ready, removing the
//! taint once the node is Ready again.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tracing::info;

use super::cluster::Shared;
use super::controllers::util::condition;
use super::nodes::NodeFactory;
use super::resources::well_known;

/// The taint upstream's cloud node lifecycle controller puts on nodes of shut-down instances.
pub(crate) const SHUTDOWN_TAINT: &str = "node.cloudprovider.kubernetes.io/shutdown";

/// Mirrors one instance's run state onto its node. `silenced` holds the nodes this loop
/// silenced, so a start only revives kubelets a stop silenced.
pub(crate) fn mirror(
    shared: &Arc<Shared>,
    factory: &NodeFactory,
    silenced: &mut HashSet<String>,
    node: &str,
    stopped: bool,
) {
    if stopped && silenced.insert(node.to_string()) {
        factory.power_off(node);
        info!(%node, "instance stopped; kubelet silent, backends refuse connections");
    } else if !stopped && silenced.remove(node) {
        factory.power_on(node, shared.timing.node_boot_delay);
        info!(%node, "instance started; booting");
    }
    let Some(obj) = shared.store.get("nodes", "", node) else {
        return;
    };
    let ready = condition(&obj, "Ready") == Some("True");
    let tainted = taints(&obj).any(|t| t["key"] == json!(SHUTDOWN_TAINT));
    if stopped && !ready && !tainted {
        let _ = shared
            .store
            .update_with(well_known::nodes(), "", node, |o| {
                let taint = json!({"key": SHUTDOWN_TAINT, "effect": "NoSchedule"});
                match o.pointer_mut("/spec/taints").and_then(Value::as_array_mut) {
                    Some(list) => list.push(taint),
                    None => o["spec"]["taints"] = json!([taint]),
                }
                Ok(())
            });
    } else if ready && tainted {
        let _ = shared
            .store
            .update_with(well_known::nodes(), "", node, |o| {
                if let Some(list) = o.pointer_mut("/spec/taints").and_then(Value::as_array_mut) {
                    list.retain(|t| t["key"] != json!(SHUTDOWN_TAINT));
                }
                Ok(())
            });
    }
}

fn taints(node: &Value) -> impl Iterator<Item = &Value> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}
