//! Detection for every fault: which watch tells that the system noticed a firing, started just
//! before the fault acts (a pod deleted with grace 0 leaves its Service at once) and read after.
//!
//! - `podKill`, `podEvict`: the lost pods stop being ready endpoints of their Services.
//! - `nodeDrain`, `zoneOutage`: the same for the pods running on the chosen nodes (a cordon or a
//!   NoExecute taint leaves the node Ready; its evicted pods leaving is what clients notice).
//! - `ec2Stop`, `ec2Terminate`: the instances' nodes turn `Ready=False/Unknown`.
//! - `azPartition`: every node of the cut zone turns `Ready=False/Unknown`.
//! - `nodeCordon`: nothing; a cordon disrupts no running pod.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use super::{
    Confirmation, Detection, Fault, FaultError, FaultPlan, Healing, Injection, TargetKind,
};
use crate::infra::kube::KubeClient;
use crate::infra::kube::detection_watch::{DetectionWatch, Watched};
use crate::spec::FaultKind;

/// What to watch for one firing, before the pods on nodes are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// A watch ready to start.
    Watch(Watched),
    /// The pods running on these nodes leave their Services.
    PodsOnNodes(Vec<String>),
}

/// The watches that tell when the system noticed `plan`.
pub fn planned(plan: &FaultPlan) -> Vec<Planned> {
    let names = |kind: TargetKind| -> Vec<String> {
        plan.targets
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.name.clone())
            .collect()
    };
    match plan.kind {
        FaultKind::PodKill | FaultKind::PodEvict => {
            let mut by_namespace: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for t in plan.targets.iter().filter(|t| t.kind == TargetKind::Pod) {
                if let Some(ns) = &t.namespace {
                    by_namespace
                        .entry(ns.clone())
                        .or_default()
                        .push(t.name.clone());
                }
            }
            by_namespace
                .into_iter()
                .map(|(namespace, pods)| Planned::Watch(Watched::PodEndpoints { namespace, pods }))
                .collect()
        }
        FaultKind::NodeDrain | FaultKind::ZoneOutage => {
            let nodes = names(TargetKind::Node);
            if nodes.is_empty() {
                Vec::new()
            } else {
                vec![Planned::PodsOnNodes(nodes)]
            }
        }
        // A slow or lossy pod stays a ready endpoint: nothing to watch for.
        FaultKind::NodeCordon
        | FaultKind::PodNetworkLatency
        | FaultKind::PodNetworkLoss
        | FaultKind::PodNetworkBlackhole => Vec::new(),
        FaultKind::Ec2Stop | FaultKind::Ec2Terminate => {
            let nodes: Vec<String> = plan
                .targets
                .iter()
                .filter(|t| t.kind == TargetKind::Instance)
                .filter_map(|t| t.node.clone())
                .collect();
            if nodes.is_empty() {
                Vec::new()
            } else {
                vec![Planned::Watch(Watched::NodesNotReady {
                    nodes,
                    zones: Vec::new(),
                })]
            }
        }
        FaultKind::AzPartition => {
            let zones: BTreeSet<String> = plan
                .targets
                .iter()
                .filter(|t| t.kind == TargetKind::Subnet)
                .filter_map(|t| t.zone.clone())
                .collect();
            if zones.is_empty() {
                Vec::new()
            } else {
                vec![Planned::Watch(Watched::NodesNotReady {
                    nodes: Vec::new(),
                    zones: zones.into_iter().collect(),
                })]
            }
        }
    }
}

/// One detection from several watches: noticed when the last of them noticed.
pub fn combine(detections: impl IntoIterator<Item = Detection>) -> Detection {
    let mut combined = Detection::NotApplicable;
    for d in detections {
        combined = match (combined, d) {
            (Detection::NotDetected, _) | (_, Detection::NotDetected) => Detection::NotDetected,
            (Detection::NotApplicable, d) | (d, Detection::NotApplicable) => d,
            (Detection::Detected { at: a }, Detection::Detected { at: b }) => {
                Detection::Detected { at: a.max(b) }
            }
        };
    }
    combined
}

/// A fault whose detection is watched from just before it acts.
pub struct Detected {
    inner: Arc<dyn Fault>,
    kube: KubeClient,
    timeout: Duration,
    watches: Mutex<HashMap<String, Vec<DetectionWatch>>>,
}

impl Detected {
    /// Wraps `inner`; each firing's watches give up after `timeout`.
    pub fn new(inner: Arc<dyn Fault>, kube: KubeClient, timeout: Duration) -> Self {
        Self {
            inner,
            kube,
            timeout,
            watches: Mutex::new(HashMap::new()),
        }
    }

    fn key(plan: &FaultPlan) -> String {
        format!("{}/{}", plan.fault, plan.seed)
    }

    async fn resolve(&self, planned: Planned) -> Result<Vec<Watched>, FaultError> {
        match planned {
            Planned::Watch(w) => Ok(vec![w]),
            Planned::PodsOnNodes(nodes) => {
                let mut by_namespace: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for node in nodes {
                    let field = format!("spec.nodeName={node}");
                    let pods = self
                        .kube
                        .list_pods(None, None, Some(&field))
                        .await
                        .map_err(super::kube_context::api)?;
                    for pod in pods {
                        if let (Some(ns), Some(name)) = (pod.metadata.namespace, pod.metadata.name)
                        {
                            by_namespace.entry(ns).or_default().push(name);
                        }
                    }
                }
                Ok(by_namespace
                    .into_iter()
                    .map(|(namespace, pods)| Watched::PodEndpoints { namespace, pods })
                    .collect())
            }
        }
    }

    async fn start(&self, plan: &FaultPlan) -> Result<Vec<DetectionWatch>, FaultError> {
        let mut started = Vec::new();
        for p in planned(plan) {
            for watched in self.resolve(p).await? {
                let watch = DetectionWatch::start(&self.kube, watched, self.timeout)
                    .await
                    .map_err(super::kube_context::api)?;
                started.push(watch);
            }
        }
        Ok(started)
    }
}

#[async_trait]
impl Fault for Detected {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> FaultKind {
        self.inner.kind()
    }

    async fn plan(&self, run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        self.inner.plan(run_id, firing).await
    }

    async fn prepare(&self, plan: &FaultPlan) {
        self.inner.prepare(plan).await;
        match self.start(plan).await {
            Ok(watches) => {
                self.watches
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(Self::key(plan), watches);
            }
            Err(err) => warn!(%err, "cannot watch for the detection of {}", plan.fault),
        }
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let prepared = self
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&Self::key(plan));
        if !prepared {
            self.prepare(plan).await;
        }
        self.inner.inject(plan).await
    }

    async fn await_healing(
        &self,
        plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Healing {
        self.inner.await_healing(plan, injection, timeout).await
    }

    async fn confirm(
        &self,
        plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Confirmation {
        self.inner.confirm(plan, injection, timeout).await
    }

    async fn await_detection(&self, plan: &FaultPlan, _timeout: Duration) -> Detection {
        let watches = self
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Self::key(plan))
            .unwrap_or_default();
        let mut detections = Vec::new();
        for watch in watches {
            detections.push(watch.finish().await);
        }
        combine(detections)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::fault::TargetRef;

    fn plan(kind: FaultKind, targets: Vec<TargetRef>) -> FaultPlan {
        FaultPlan {
            fault: "f".into(),
            kind,
            targets,
            undo: Vec::new(),
            irreversible: Vec::new(),
            seed: 1,
            candidates: 1,
        }
    }

    fn target(
        kind: TargetKind,
        name: &str,
        ns: Option<&str>,
        node: Option<&str>,
        zone: Option<&str>,
    ) -> TargetRef {
        TargetRef {
            kind,
            name: name.into(),
            namespace: ns.map(Into::into),
            node: node.map(Into::into),
            zone: zone.map(Into::into),
        }
    }

    #[test]
    fn each_kind_watches_what_its_users_would_notice() {
        let pods = plan(
            FaultKind::PodKill,
            vec![
                target(TargetKind::Pod, "web-1", Some("shop"), Some("n1"), None),
                target(TargetKind::Pod, "api-1", Some("back"), Some("n1"), None),
            ],
        );
        assert_eq!(
            planned(&pods),
            vec![
                Planned::Watch(Watched::PodEndpoints {
                    namespace: "back".into(),
                    pods: vec!["api-1".into()]
                }),
                Planned::Watch(Watched::PodEndpoints {
                    namespace: "shop".into(),
                    pods: vec!["web-1".into()]
                }),
            ]
        );
        let stop = plan(
            FaultKind::Ec2Stop,
            vec![target(
                TargetKind::Instance,
                "i-1",
                None,
                Some("n2"),
                Some("a"),
            )],
        );
        assert_eq!(
            planned(&stop),
            vec![Planned::Watch(Watched::NodesNotReady {
                nodes: vec!["n2".into()],
                zones: vec![]
            })]
        );
        let cut = plan(
            FaultKind::AzPartition,
            vec![target(
                TargetKind::Subnet,
                "subnet-1",
                None,
                None,
                Some("us-east-1a"),
            )],
        );
        assert_eq!(
            planned(&cut),
            vec![Planned::Watch(Watched::NodesNotReady {
                nodes: vec![],
                zones: vec!["us-east-1a".into()]
            })]
        );
        let drain = plan(
            FaultKind::NodeDrain,
            vec![target(TargetKind::Node, "n3", None, None, None)],
        );
        assert_eq!(
            planned(&drain),
            vec![Planned::PodsOnNodes(vec!["n3".into()])]
        );
        let cordon = plan(
            FaultKind::NodeCordon,
            vec![target(TargetKind::Node, "n3", None, None, None)],
        );
        assert!(planned(&cordon).is_empty());
    }

    #[test]
    fn several_watches_detect_when_the_last_noticed_and_one_miss_is_a_miss() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let later = t + Duration::from_secs(2);
        assert_eq!(
            combine([
                Detection::Detected { at: later },
                Detection::NotApplicable,
                Detection::Detected { at: t },
            ]),
            Detection::Detected { at: later }
        );
        assert_eq!(
            combine([Detection::Detected { at: t }, Detection::NotDetected]),
            Detection::NotDetected
        );
        assert_eq!(combine([]), Detection::NotApplicable);
    }
}
