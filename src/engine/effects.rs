//! What each firing did and when the system noticed: the fault's change read back through the
//! API (or `noEffect`), and the detection, as offsets from the run's origin. A firing that
//! changed nothing fails the run unless its fault allows it, so a quiet run is never mistaken
//! for a resilient one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::warn;

use super::run::Interrupts;
use crate::fault::{Confirmation, Detection, Fault, FaultPlan, Injection};
use crate::spec::ExperimentSpec;
use crate::verdict::judge::TargetResult;

/// Whether a firing's change showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum EffectStatus {
    /// It showed.
    Confirmed {
        /// Seconds from the origin.
        #[serde(with = "crate::verdict::evidence::secs")]
        at: Duration,
    },
    /// Nothing changed, or the change never showed.
    NoEffect {
        /// Why.
        reason: String,
    },
    /// The fault cannot read its change back.
    Unchecked,
}

/// When the system noticed a firing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Noticed {
    /// Nothing to notice (a cordon), or nothing watched.
    NotApplicable,
    /// Noticed.
    Detected {
        /// Seconds from the origin.
        #[serde(with = "crate::verdict::evidence::secs")]
        at: Duration,
    },
    /// Not noticed within the timeout.
    NotDetected,
}

/// One firing's effect and detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringEffect {
    /// The fault.
    pub fault: String,
    /// Which repetition.
    pub firing: u32,
    /// When it acted (or tried to), seconds from the origin.
    #[serde(with = "crate::verdict::evidence::secs")]
    pub injected_at: Duration,
    /// Whether its change showed.
    pub effect: EffectStatus,
    /// When the system noticed.
    pub detection: Noticed,
}

impl FiringEffect {
    /// A firing that changed nothing: its plan or its injection failed.
    pub fn missed(fault: &str, firing: u32, injected_at: Duration, reason: String) -> Self {
        Self {
            fault: fault.to_owned(),
            firing,
            injected_at,
            effect: EffectStatus::NoEffect { reason },
            detection: Noticed::NotApplicable,
        }
    }

    /// From injection to detection, when detected.
    pub fn detection_after(&self) -> Option<Duration> {
        match self.detection {
            Noticed::Detected { at } => Some(at.saturating_sub(self.injected_at)),
            _ => None,
        }
    }
}

/// An instant of the wall clock as an offset from `origin`.
fn offset(origin: Instant, at: SystemTime) -> Duration {
    let now = Instant::now().saturating_duration_since(origin);
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    now.saturating_sub(age)
}

/// What the engine needs to confirm and watch one firing in the background.
pub(crate) struct Watch {
    pub fault: Arc<dyn Fault>,
    pub plan: FaultPlan,
    pub injection: Injection,
    pub firing: u32,
    pub injected_at: Duration,
    pub origin: Instant,
    pub effect_timeout: Duration,
    pub detection_timeout: Duration,
}

/// Confirms the firing, then waits for its detection.
pub(crate) fn spawn(tasks: &mut JoinSet<FiringEffect>, w: Watch) {
    tasks.spawn(async move {
        let confirmation = w
            .fault
            .confirm(&w.plan, &w.injection, w.effect_timeout)
            .await;
        let detection = w.fault.await_detection(&w.plan, w.detection_timeout).await;
        FiringEffect {
            fault: w.plan.fault.clone(),
            firing: w.firing,
            injected_at: w.injected_at,
            effect: match confirmation {
                Confirmation::Confirmed { at } => EffectStatus::Confirmed {
                    at: offset(w.origin, at).max(w.injected_at),
                },
                Confirmation::NoEffect { reason } => EffectStatus::NoEffect { reason },
                Confirmation::Unchecked => EffectStatus::Unchecked,
            },
            detection: match detection {
                Detection::Detected { at } => Noticed::Detected {
                    at: offset(w.origin, at).max(w.injected_at),
                },
                Detection::NotDetected => Noticed::NotDetected,
                Detection::NotApplicable => Noticed::NotApplicable,
            },
        }
    });
}

/// Waits for every firing's watch (a second signal stops waiting), in firing order.
pub(crate) async fn collect(
    tasks: &mut JoinSet<FiringEffect>,
    mut done: Vec<FiringEffect>,
    interrupts: &Interrupts,
) -> Vec<FiringEffect> {
    loop {
        let next = tokio::select! {
            next = tasks.join_next() => next,
            () = interrupts.hurry.cancelled() => {
                tasks.abort_all();
                None
            }
        };
        let Some(joined) = next else { break };
        match joined {
            Ok(effect) => done.push(effect),
            Err(err) if err.is_panic() => warn!(%err, "a fault's effect watch panicked"),
            Err(_) => {}
        }
    }
    done.sort_by(|a, b| {
        (a.injected_at, &a.fault, a.firing).cmp(&(b.injected_at, &b.fault, b.firing))
    });
    done
}

/// Per fault with something to notice, the slowest detection (None: a firing went unnoticed).
pub fn detection_evidence(effects: &[FiringEffect]) -> BTreeMap<String, Option<Duration>> {
    let mut evidence: BTreeMap<String, Option<Duration>> = BTreeMap::new();
    for e in effects {
        if e.detection == Noticed::NotApplicable {
            continue;
        }
        let after = e.detection_after();
        evidence
            .entry(e.fault.clone())
            .and_modify(|slowest| {
                *slowest = match (*slowest, after) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                }
            })
            .or_insert(after);
    }
    evidence
}

/// A failed result per fault that changed nothing in some firing and does not allow it.
pub fn no_effect_results(spec: &ExperimentSpec, effects: &[FiringEffect]) -> Vec<TargetResult> {
    spec.spec
        .faults
        .iter()
        .filter(|f| !f.allow_no_effect)
        .filter_map(|fault| {
            let firings: Vec<&FiringEffect> =
                effects.iter().filter(|e| e.fault == fault.name).collect();
            let missed: Vec<String> = firings
                .iter()
                .filter_map(|e| match &e.effect {
                    EffectStatus::NoEffect { reason } => {
                        Some(format!("firing {}: {reason}", e.firing))
                    }
                    _ => None,
                })
                .collect();
            (!missed.is_empty()).then(|| TargetResult {
                name: format!("{}-effect", fault.name),
                probe: "*".to_owned(),
                measure: crate::spec::Measure::Satisfied,
                window: crate::spec::Window::During,
                fault: Some(fault.name.clone()),
                required: "the fault's change shows through the API (allowNoEffect: false)"
                    .to_owned(),
                measured: Some(format!(
                    "noEffect in {} of {} firing(s)",
                    missed.len(),
                    firings.len()
                )),
                value: Some(missed.len() as f64),
                passed: false,
                detail: format!(
                    "the fault changed nothing, so quiet probes prove nothing: {}",
                    missed.join("; ")
                ),
                span: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(
        fault: &str,
        injected: u64,
        effect: EffectStatus,
        detection: Noticed,
    ) -> FiringEffect {
        FiringEffect {
            fault: fault.into(),
            firing: 0,
            injected_at: Duration::from_secs(injected),
            effect,
            detection,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn spec(allow: bool) -> ExperimentSpec {
        let text = format!(
            r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {{name: effect-test}}
spec:
  duration: 30s
  steadyState:
    probes: [{{name: web, http: {{url: "http://127.0.0.1/"}}}}]
  faults:
    - {{name: stop, at: 5s, for: 10s, allowNoEffect: {allow}, ec2Stop: {{target: {{zone: a}}}}}}
  targets:
    - {{probe: web, availability: ">= 90%"}}
"#
        );
        crate::spec::parse_experiment("t.yaml", &text).unwrap().0
    }

    #[test]
    fn a_fault_without_effect_fails_the_run_unless_it_allows_it() {
        let effects = vec![
            firing(
                "stop",
                5,
                EffectStatus::Confirmed { at: secs(5) },
                Noticed::NotApplicable,
            ),
            FiringEffect::missed("stop", 1, secs(6), "the instance is stopped".into()),
        ];
        let results = no_effect_results(&spec(false), &effects);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].name, "stop-effect");
        assert!(!results[0].passed);
        assert_eq!(
            results[0].measured.as_deref(),
            Some("noEffect in 1 of 2 firing(s)")
        );
        assert!(results[0].detail.contains("the instance is stopped"));
        assert!(no_effect_results(&spec(true), &effects).is_empty());
        assert!(no_effect_results(&spec(false), &effects[..1]).is_empty());
    }

    #[test]
    fn the_slowest_firing_is_the_detection_and_one_unnoticed_firing_is_none() {
        let confirmed = EffectStatus::Confirmed { at: secs(5) };
        let effects = vec![
            firing(
                "kill",
                5,
                confirmed.clone(),
                Noticed::Detected { at: secs(6) },
            ),
            firing(
                "kill",
                10,
                confirmed.clone(),
                Noticed::Detected { at: secs(13) },
            ),
            firing(
                "cut",
                5,
                confirmed.clone(),
                Noticed::Detected { at: secs(15) },
            ),
            firing("cut", 30, confirmed.clone(), Noticed::NotDetected),
            firing("cordon", 5, confirmed, Noticed::NotApplicable),
        ];
        let evidence = detection_evidence(&effects);
        assert_eq!(evidence.get("kill"), Some(&Some(secs(3))));
        assert_eq!(evidence.get("cut"), Some(&None));
        assert!(!evidence.contains_key("cordon"));
    }
}
