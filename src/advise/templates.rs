//! Starter experiments for one Service, written by `steadfast init`: a pod kill, a zone outage
//! and, when a budget covers the pods, a node drain. Plain text with comments, because the
//! comments (what to tune) are half the value and a serializer would drop them.

use std::fmt::Write;
use std::time::Duration;

/// What a starter needs to know about one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct StarterInput {
    /// Namespace of the Service (and the only one faults may touch).
    pub namespace: String,
    /// Service name.
    pub service: String,
    /// Service port, when it has one.
    pub port: Option<u16>,
    /// Path to probe: the readiness probe's `httpGet` path, else `/`.
    pub path: String,
    /// Pod label selector of the Service, `k=v,...`.
    pub selector: String,
    /// The workload behind it (`Deployment` or `StatefulSet`, name), when one was found.
    pub workload: Option<(String, String)>,
    /// The zone to take away in the zone outage, when nodes carry zones.
    pub zone: Option<String>,
    /// Nodes in that zone, and in the whole cluster (for the blast-radius limits).
    pub zone_nodes: u32,
    /// Nodes in the cluster.
    pub total_nodes: u32,
    /// Whether a PodDisruptionBudget covers the pods (then a drain is meaningful).
    pub has_budget: bool,
    /// Length of the fault phase.
    pub duration: Duration,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starter {
    /// File name, e.g. `web-pod-kill.yaml`.
    pub file_name: String,
    /// YAML text.
    pub text: String,
}

/// The starters for one Service.
pub fn starters(input: &StarterInput) -> Vec<Starter> {
    let mut out = vec![pod_kill(input)];
    if input.zone.is_some() {
        out.push(zone_outage(input));
    }
    if input.has_budget {
        out.push(node_drain(input));
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// Timing derived from the fault phase: steady state before/after, fault start and length.
struct Timing {
    duration: Duration,
    settle: Duration,
    at: Duration,
    length: Duration,
}

fn timing(duration: Duration) -> Timing {
    let duration = duration.max(Duration::from_secs(12));
    let settle = (duration / 4).clamp(Duration::from_secs(5), Duration::from_secs(30));
    let at = Duration::from_secs((duration.as_secs() / 6).max(1));
    Timing {
        duration,
        settle,
        at,
        length: duration - at * 2,
    }
}

/// Header, steady state and probes shared by every starter; `kind` names the file's fault.
fn head(i: &StarterInput, kind: &str, description: &str) -> String {
    let t = timing(i.duration);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Starter written by `steadfast init` for Service {}/{}: {description}",
        i.namespace, i.service
    );
    let _ = writeln!(
        s,
        "# Tune the targets and durations to your service before relying on the verdict; \
         `steadfast plan FILE` shows what it would touch."
    );
    let _ = writeln!(s, "apiVersion: steadfast.dev/v1alpha1");
    let _ = writeln!(s, "kind: Experiment");
    let _ = writeln!(s, "metadata:");
    let _ = writeln!(s, "  name: {}-{kind}", i.service);
    let _ = writeln!(s, "  labels: {{generated-by: steadfast-init}}");
    let _ = writeln!(s, "spec:");
    let _ = writeln!(s, "  description: \"{description}\"");
    let _ = writeln!(
        s,
        "  # Fault phase. Longer runs see more of the failure (rescheduling, scale-up)."
    );
    let _ = writeln!(s, "  duration: {}", secs(t.duration));
    let _ = writeln!(s, "  steadyState:");
    let _ = writeln!(
        s,
        "    # The Service must be healthy this long before faults start, and again after."
    );
    let _ = writeln!(s, "    before: {}", secs(t.settle));
    let _ = writeln!(s, "    after: {}", secs(t.settle));
    let _ = writeln!(
        s,
        "    # How long recovery may take once faults end; raise it for slow-starting pods."
    );
    let _ = writeln!(s, "    recoveryTimeout: 2m");
    let _ = writeln!(s, "    probes:");
    let _ = writeln!(s, "      - name: {}", i.service);
    let _ = writeln!(s, "        http:");
    let port = i.port.map(|p| format!(", port: {p}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "          # Path from the pods' readiness probe when they have one; point it at a page"
    );
    let _ = writeln!(
        s,
        "          # that exercises the service's dependencies for a stricter check."
    );
    let _ = writeln!(
        s,
        "          service: {{namespace: {}, name: {}{port}, path: \"{}\"}}",
        i.namespace,
        i.service,
        i.path.replace('"', "%22")
    );
    let _ = writeln!(
        s,
        "          # 20 requests per second is gentle; raise it to see short blips."
    );
    let _ = writeln!(s, "          rate: 20/s");
    let _ = writeln!(s, "          timeout: 2s");
    let _ = writeln!(s, "          newConnectionPerRequest: true");
    if let Some((kind, name)) = &i.workload {
        let _ = writeln!(s, "      - name: {}-replicas", i.service);
        let _ = writeln!(s, "        kubernetes:");
        let _ = writeln!(
            s,
            "          workload: {{kind: {kind}, namespace: {}, name: {name}}}",
            i.namespace
        );
    }
    s
}

/// Targets: availability of the Service, and (with a workload) replicas back after.
fn targets(i: &StarterInput, availability: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  targets:");
    let _ = writeln!(
        s,
        "    # Conservative first targets: tighten them once a run passes (e.g. >= 99.9%)."
    );
    let _ = writeln!(
        s,
        "    - {{probe: {}, availability: \">= {availability}\"}}",
        i.service
    );
    if i.workload.is_some() {
        let _ = writeln!(s, "    # Every replica is back and ready after the faults.");
        let _ = writeln!(
            s,
            "    - {{probe: {}-replicas, window: after, satisfied: \">= 100%\"}}",
            i.service
        );
    }
    s
}

/// Safety limits: faults touch only the Service's namespace.
fn safety(i: &StarterInput, extra: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  safety:");
    let _ = writeln!(
        s,
        "    # Faults may touch this namespace only. Uncomment the opt-in label so only pods"
    );
    let _ = writeln!(s, "    # and nodes you labelled can ever be chosen.");
    let _ = writeln!(s, "    allowNamespaces: [{}]", i.namespace);
    let _ = writeln!(s, "    # optInLabel: steadfast.dev/chaos=allowed");
    for line in extra {
        let _ = writeln!(s, "    {line}");
    }
    let _ = writeln!(
        s,
        "    # Stop and roll back early if the Service falls this low."
    );
    let _ = writeln!(s, "    abortWhen:");
    let _ = writeln!(
        s,
        "      - {{probe: {}, availability: \"< 50%\", over: 10s}}",
        i.service
    );
    s
}

fn pod_kill(i: &StarterInput) -> Starter {
    let t = timing(i.duration);
    let every = (t.length / 3).max(Duration::from_secs(5));
    let mut s = head(
        i,
        "pod-kill",
        &format!(
            "Kill one pod of {} every {}; the Service stays available.",
            i.service,
            secs(every)
        ),
    );
    let _ = writeln!(s, "  faults:");
    let _ = writeln!(s, "    - name: kill-one-pod");
    let _ = writeln!(s, "      at: {}", secs(t.at));
    let _ = writeln!(s, "      for: {}", secs(t.length));
    let _ = writeln!(
        s,
        "      # How often a pod is killed while the fault lasts."
    );
    let _ = writeln!(s, "      every: {}", secs(every));
    let _ = writeln!(s, "      podKill:");
    let _ = writeln!(
        s,
        "        # mode: one kills a single pod per firing; `count` or `percent` kill more."
    );
    let _ = writeln!(
        s,
        "        target: {{namespaces: [{}], selector: \"{}\", mode: one}}",
        i.namespace, i.selector
    );
    s.push_str(&targets(i, "99%"));
    s.push_str(&safety(i, &["maxPods: 1".into()]));
    Starter {
        file_name: format!("{}-pod-kill.yaml", i.service),
        text: s,
    }
}

fn zone_outage(i: &StarterInput) -> Starter {
    let t = timing(i.duration);
    let zone = i.zone.clone().unwrap_or_default();
    let mut s = head(
        i,
        "zone-outage",
        &format!("Lose zone {zone} (cordon and NoExecute taint) while probing the Service."),
    );
    let _ = writeln!(s, "  faults:");
    let _ = writeln!(s, "    - name: lose-zone");
    let _ = writeln!(s, "      at: {}", secs(t.at));
    let _ = writeln!(s, "      for: {}", secs(t.length));
    let _ = writeln!(
        s,
        "      # Pick the zone that hosts most of the Service's pods to test the worst case."
    );
    let _ = writeln!(s, "      zoneOutage: {{zone: {zone}}}");
    s.push_str(&targets(i, "95%"));
    let percent = (u64::from(i.zone_nodes) * 100).div_ceil(u64::from(i.total_nodes.max(1)));
    s.push_str(&safety(
        i,
        &[
            "# The zone's nodes, and no more of the cluster's than that.".into(),
            format!("maxNodes: {}", i.zone_nodes.max(1)),
            format!("maxPercent: {}%", percent.clamp(1, 100)),
        ],
    ));
    Starter {
        file_name: format!("{}-zone-outage.yaml", i.service),
        text: s,
    }
}

fn node_drain(i: &StarterInput) -> Starter {
    let t = timing(i.duration);
    let mut s = head(
        i,
        "node-drain",
        "Drain one node through the Eviction API; the budget keeps the Service available.",
    );
    let _ = writeln!(s, "  faults:");
    let _ = writeln!(s, "    - name: drain-one-node");
    let _ = writeln!(s, "      at: {}", secs(t.at));
    let _ = writeln!(s, "      for: {}", secs(t.length));
    let _ = writeln!(s, "      nodeDrain:");
    let _ = writeln!(
        s,
        "        # How long evictions may wait for the budget; a budget allowing no disruption"
    );
    let _ = writeln!(s, "        # makes the drain time out here.");
    let _ = writeln!(s, "        timeout: {}", secs(t.length * 3 / 4));
    let _ = writeln!(
        s,
        "        # Narrow with `selector` or `zone` to drain a node that runs the Service's pods."
    );
    let _ = writeln!(s, "        target: {{mode: one}}");
    s.push_str(&targets(i, "98%"));
    s.push_str(&safety(i, &["maxNodes: 1".into()]));
    Starter {
        file_name: format!("{}-node-drain.yaml", i.service),
        text: s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> StarterInput {
        StarterInput {
            namespace: "shop".into(),
            service: "web".into(),
            port: Some(80),
            path: "/healthz".into(),
            selector: "app=web".into(),
            workload: Some(("Deployment".into(), "web".into())),
            zone: Some("us-east-1a".into()),
            zone_nodes: 2,
            total_nodes: 6,
            has_budget: true,
            duration: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_budget_adds_a_drain_and_a_zone_adds_an_outage() {
        let names = |i: &StarterInput| -> Vec<String> {
            starters(i).into_iter().map(|s| s.file_name).collect()
        };
        assert_eq!(
            names(&input()),
            [
                "web-pod-kill.yaml",
                "web-zone-outage.yaml",
                "web-node-drain.yaml"
            ]
        );
        let bare = StarterInput {
            has_budget: false,
            zone: None,
            ..input()
        };
        assert_eq!(names(&bare), ["web-pod-kill.yaml"]);
    }

    #[test]
    fn starters_probe_the_readiness_path_and_scope_safety_to_the_namespace() {
        for s in starters(&input()) {
            assert!(
                s.text.contains(
                    "service: {namespace: shop, name: web, port: 80, path: \"/healthz\"}"
                ),
                "{}",
                s.text
            );
            assert!(s.text.contains("allowNamespaces: [shop]"), "{}", s.text);
        }
        let outage = &starters(&input())[1].text;
        assert!(outage.contains("maxPercent: 34%"), "{outage}");
    }
}
