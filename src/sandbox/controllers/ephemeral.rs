//! The kubelet's side of ephemeral containers: it "runs" each one by reading its command as
//! the `tc`/`iptables` script a pod network fault writes, applying the rules to the pod's
//! backend at once, taking them away when the script's `sleep` runs out, and reporting the
//! container in `status.ephemeralContainerStatuses`: running, then terminated with an exit code.
//!
//! A command it cannot read terminates the container at once with exit code 1 and the reason
//! as its message, as a shell would report a failed command.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::util::s;
use crate::fault::net_script::{self, Removal, Step};
use crate::sandbox::cluster::Shared;
use crate::sandbox::netem::NetworkCell;
use crate::sandbox::resources::well_known;
use crate::sandbox::store::now_rfc3339;

/// How long rules without a removal in their script stay (as if for good).
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// One running ephemeral container: removals still to come, and when it exits.
pub(crate) struct EphemeralRun {
    removals: Vec<(Instant, Removal)>,
    exits_at: Instant,
    started_at: String,
    exit_code: i32,
    done: bool,
}

/// The ephemeral containers of one pod, by name.
#[derive(Default)]
pub(crate) struct PodEphemerals {
    runs: HashMap<String, EphemeralRun>,
}

impl PodEphemerals {
    /// Whether a container still waits for its script's time to pass.
    pub fn has_timers(&self) -> bool {
        self.runs.values().any(|r| !r.done)
    }

    /// Starts new containers of `pod`, advances running ones, posts their statuses.
    pub fn sync(&mut self, shared: &Arc<Shared>, pod: &Value, network: &NetworkCell) {
        let specs = pod
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut statuses: Vec<(String, Value)> = Vec::new();
        for c in &specs {
            let name = s(c, "/name").to_string();
            if self.runs.contains_key(&name) {
                continue;
            }
            let run = start(c, network);
            statuses.push((name.clone(), status(c, &run)));
            self.runs.insert(name, run);
        }
        let now = Instant::now();
        for c in &specs {
            let name = s(c, "/name");
            let Some(run) = self.runs.get_mut(name) else {
                continue;
            };
            if run.done {
                continue;
            }
            let mut net = network.lock().unwrap_or_else(|e| e.into_inner());
            run.removals.retain(|(due, removal)| {
                if *due > now {
                    return true;
                }
                if !net.remove(removal) {
                    // `tc qdisc del` / `iptables -D` with nothing to delete fails.
                    run.exit_code = 2;
                }
                false
            });
            drop(net);
            if run.exits_at <= now {
                run.done = true;
                statuses.push((name.to_string(), status(c, run)));
            }
        }
        if statuses.is_empty() {
            return;
        }
        let (ns, pod_name) = crate::sandbox::store::ns_name(pod);
        let _ = shared
            .store
            .update_with(well_known::pods(), &ns, &pod_name, |p| {
                let mut all: Vec<Value> = p
                    .pointer("/status/ephemeralContainerStatuses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for (name, st) in statuses {
                    match all.iter_mut().find(|x| x["name"] == json!(name)) {
                        Some(x) => *x = st,
                        None => all.push(st),
                    }
                }
                p["status"]["ephemeralContainerStatuses"] = json!(all);
                Ok(())
            });
    }
}

/// The container's command line: `command` followed by `args`.
fn command_of(c: &Value) -> Vec<String> {
    ["/command", "/args"]
        .iter()
        .filter_map(|p| c.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|w| w.as_str().map(String::from))
        .collect()
}

fn start(c: &Value, network: &NetworkCell) -> EphemeralRun {
    let now = Instant::now();
    let started_at = now_rfc3339();
    let steps = match net_script::parse(&command_of(c)) {
        Ok(steps) => steps,
        Err(e) => {
            tracing::warn!(container = %s(c, "/name"), error = %e, "ephemeral container failed");
            return EphemeralRun {
                removals: Vec::new(),
                exits_at: now,
                started_at,
                exit_code: 1,
                done: true,
            };
        }
    };
    // Walk the script on a virtual clock: a rule lasts until the first removal of its family.
    let mut at = now;
    let mut timeline: Vec<(Instant, Step)> = Vec::new();
    for step in steps {
        if let Step::Sleep(d) = step {
            at += d;
        } else {
            timeline.push((at, step));
        }
    }
    let mut removals = Vec::new();
    let mut net = network.lock().unwrap_or_else(|e| e.into_inner());
    let mut exit_code = 0;
    for (i, (when, step)) in timeline.iter().enumerate() {
        match step {
            Step::Apply(rule) => {
                let until = timeline[i + 1..]
                    .iter()
                    .find(|(_, later)| matches!(later, Step::Remove(r) if removes(r, rule)))
                    .map_or(now + FOREVER, |(t, _)| *t);
                net.apply(rule.clone(), until);
            }
            Step::Remove(r) if *when <= now => {
                if !net.remove(r) {
                    exit_code = 2;
                }
            }
            Step::Remove(r) => removals.push((*when, r.clone())),
            Step::Sleep(_) => {}
        }
    }
    EphemeralRun {
        done: at <= now && removals.is_empty(),
        removals,
        exits_at: at,
        started_at,
        exit_code,
    }
}

fn removes(removal: &Removal, rule: &net_script::NetRule) -> bool {
    use net_script::NetRule;
    match (removal, rule) {
        (Removal::Qdisc, NetRule::Delay { .. } | NetRule::Loss { .. }) => true,
        (
            Removal::Drop { chain, port, to },
            NetRule::Drop {
                chain: c,
                port: p,
                to: t,
            },
        ) => chain == c && port == p && to == t,
        _ => false,
    }
}

fn status(c: &Value, run: &EphemeralRun) -> Value {
    let state = if run.done {
        let mut t = json!({
            "exitCode": run.exit_code,
            "reason": if run.exit_code == 0 { "Completed" } else { "Error" },
            "startedAt": run.started_at, "finishedAt": now_rfc3339(),
        });
        if run.exit_code == 1
            && let Err(e) = net_script::parse(&command_of(c))
        {
            t["message"] = json!(e.to_string());
        }
        json!({"terminated": t})
    } else {
        json!({"running": {"startedAt": run.started_at}})
    };
    json!({
        "name": c["name"], "image": c["image"], "imageID": format!("{}@sha256:0", s(c, "/image")),
        "containerID": format!("containerd://{}", s(c, "/name")),
        "ready": false, "restartCount": 0, "state": state,
    })
}
