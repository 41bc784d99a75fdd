//! Self-healing evidence for the Kubernetes faults that disrupt pods: the watch on their
//! replacements must start before the fault acts (a pod deleted with grace 0 is gone at once),
//! so this wrapper starts it in `prepare`, ahead of the firing, and finishes it in
//! `await_healing`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use super::healing::HealingObserver;
use super::{Confirmation, Detection, Fault, FaultError, FaultPlan, Healing, Injection};
use crate::infra::kube::KubeClient;
use crate::spec::FaultKind;

/// A fault whose pod replacements are watched from just before it acts.
pub struct Observed {
    inner: Arc<dyn Fault>,
    kube: KubeClient,
    timeout: Duration,
    observers: Mutex<HashMap<String, HealingObserver>>,
}

impl Observed {
    /// Wraps `inner`; each firing's watch gives up after `timeout`.
    pub fn new(inner: Arc<dyn Fault>, kube: KubeClient, timeout: Duration) -> Self {
        Self {
            inner,
            kube,
            timeout,
            observers: Mutex::new(HashMap::new()),
        }
    }

    fn key(plan: &FaultPlan) -> String {
        format!("{}/{}", plan.fault, plan.seed)
    }
}

#[async_trait]
impl Fault for Observed {
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
        match HealingObserver::start(&self.kube, plan, self.timeout).await {
            Ok(observer) => {
                self.observers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(Self::key(plan), observer);
            }
            Err(err) => {
                warn!(%err, "cannot watch the replacements of {}; no self-healing evidence", plan.fault)
            }
        }
    }

    async fn inject(&self, plan: &FaultPlan) -> Result<Injection, FaultError> {
        let prepared = self
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&Self::key(plan));
        if !prepared {
            self.prepare(plan).await;
        }
        self.inner.inject(plan).await
    }

    async fn confirm(
        &self,
        plan: &FaultPlan,
        injection: &Injection,
        timeout: Duration,
    ) -> Confirmation {
        self.inner.confirm(plan, injection, timeout).await
    }

    async fn await_detection(&self, plan: &FaultPlan, timeout: Duration) -> Detection {
        self.inner.await_detection(plan, timeout).await
    }

    async fn await_healing(
        &self,
        plan: &FaultPlan,
        injection: &Injection,
        _timeout: Duration,
    ) -> Healing {
        let observer = self
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Self::key(plan));
        let Some(observer) = observer else {
            return Healing::NotApplicable;
        };
        let evidence = observer.finish_after(injection).await;
        match evidence.healed_after_ms {
            Some(after) if evidence.healed && !evidence.timed_out => Healing::Healed {
                after: Duration::from_millis(after),
            },
            _ => Healing::NotHealed,
        }
    }
}
