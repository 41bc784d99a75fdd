//! `podKill`: delete pods and let their controllers replace them.
//!
//! A DELETE with a grace period starts the pod's termination (SIGTERM, then SIGKILL after the
//! grace period); `0s` removes the object at once. Nothing is undone afterwards: the pod's
//! controller creating a replacement *is* the behaviour under test, so a kill leaves no undo
//! record, only a timed effect naming the pod, its node and its zone.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::future::{BoxFuture, join_all};

use crate::fault::kube_confirm::confirm_kube;
use crate::fault::kube_context::{KubeFaultContext, api};
use crate::fault::targets::{choose_pods, pod_selection};
use crate::fault::{
    Confirmation, Effect, Fault, FaultError, FaultPlan, Injection, TargetEffect, TargetKind,
    TargetRef,
};
use crate::infra::kube::Removal;
use crate::infra::kube::ratelimit::RateLimiter;
use crate::spec::FaultKind;
use crate::spec::fault::PodKillSpec;

/// Deletes the chosen pods.
#[derive(Debug)]
pub struct PodKill {
    name: String,
    spec: PodKillSpec,
    context: KubeFaultContext,
}

impl PodKill {
    /// A `podKill` fault named `name`.
    pub fn new(name: String, spec: PodKillSpec, context: KubeFaultContext) -> Self {
        Self {
            name,
            spec,
            context,
        }
    }
}

/// Plans a pod fault: candidates, seeded choice under the pod caps, no undo records.
pub(crate) async fn plan_pods(
    context: &KubeFaultContext,
    fault: &str,
    kind: FaultKind,
    target: &crate::spec::fault::PodTargetSpec,
    firing: u32,
) -> Result<FaultPlan, FaultError> {
    let candidates = context.pod_candidates(target).await?;
    let seed = context.seed(fault, firing);
    let chosen = choose_pods(&candidates, &pod_selection(target), &context.safety, seed)?;
    Ok(FaultPlan {
        fault: fault.to_owned(),
        kind,
        targets: chosen.iter().map(|c| c.target()).collect(),
        undo: Vec::new(),
        irreversible: Vec::new(),
        seed,
        candidates: candidates.len(),
    })
}

/// Pod targets of a plan, with their namespace.
pub(crate) fn pod_targets(plan: &FaultPlan) -> impl Iterator<Item = (&TargetRef, &str)> {
    plan.targets
        .iter()
        .filter(|t| t.kind == TargetKind::Pod)
        .filter_map(|t| t.namespace.as_deref().map(|ns| (t, ns)))
}

/// Runs `act` on every pod target of `plan` at once, in waves of at most the limiter's burst.
///
/// Each wave pays the rate limiter for all its requests up front and then issues them
/// together, so a `mode: all` firing disrupts its pods at one instant instead of one per
/// `1/qps`. Each effect's `at` is the instant its request was issued.
pub(crate) async fn on_each_pod(
    plan: &FaultPlan,
    limiter: &RateLimiter,
    act: impl Fn(TargetRef, String) -> BoxFuture<'static, Effect>,
) -> Vec<TargetEffect> {
    let jobs: Vec<(TargetRef, String)> = pod_targets(plan)
        .map(|(t, ns)| (t.clone(), ns.to_owned()))
        .collect();
    let wave = usize::try_from(limiter.burst().max(1)).unwrap_or(usize::MAX);
    let mut effects = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(wave) {
        let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        tokio::time::sleep_until(limiter.reserve_batch(n)).await;
        let issued = chunk.iter().map(|(target, namespace)| {
            let target = target.clone();
            let at = SystemTime::now();
            let effect = act(target.clone(), namespace.clone());
            async move {
                TargetEffect {
                    target,
                    effect: effect.await,
                    at,
                }
            }
        });
        effects.extend(join_all(issued).await);
    }
    effects
}

#[async_trait]
impl Fault for PodKill {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> FaultKind {
        FaultKind::PodKill
    }

    async fn plan(&self, _run_id: &str, firing: u32) -> Result<FaultPlan, FaultError> {
        plan_pods(
            &self.context,
            &self.name,
            FaultKind::PodKill,
            &self.spec.target,
            firing,
        )
        .await
    }

    async fn confirm(
        &self,
        _plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Confirmation {
        confirm_kube(&self.context.kube, injection, None, timeout).await
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let grace = u32::try_from(self.spec.grace_period.get().as_secs()).unwrap_or(u32::MAX);
        let kube = self.context.kube.clone();
        let limiter = self.context.kube.limiter().clone();
        let effects = on_each_pod(plan, &limiter, move |target, namespace| {
            let kube = kube.clone();
            Box::pin(async move {
                match kube.delete_pod(&namespace, &target.name, grace, None).await {
                    Ok(Removal::Started) => Effect::Applied,
                    Ok(Removal::NotFound) => Effect::Skipped {
                        reason: "the pod was already gone".into(),
                    },
                    Ok(Removal::Blocked { message }) => Effect::Failed { error: message },
                    Err(e) => Effect::Failed {
                        error: api(e).to_string(),
                    },
                }
            })
        })
        .await;
        Ok(Injection { effects })
    }
}
