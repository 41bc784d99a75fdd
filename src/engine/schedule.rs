//! The fault timeline: when each fault fires and, for lasting faults, when it is rolled back.

use std::time::Duration;

use crate::spec::FaultSpec;

/// One firing of one fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringPlan {
    /// Index of the fault in the spec.
    pub fault: usize,
    /// 0 for the first firing, then one more per `every`.
    pub firing: u32,
    /// Offset from the start of the fault phase.
    pub at: Duration,
    /// When this firing's changes are rolled back at the earliest (lasting faults: at + for;
    /// later by as much as the injection itself took).
    pub rollback_at: Option<Duration>,
}

/// Every firing of every fault, in time order (ties in spec order).
pub fn plan_firings(faults: &[FaultSpec]) -> Vec<FiringPlan> {
    let mut firings = Vec::new();
    for (index, fault) in faults.iter().enumerate() {
        let Some(kind) = fault.kind() else { continue };
        let start = fault.at.get();
        let end = start + fault.for_.get();
        if kind.is_instant() {
            let step = fault.every.map(|e| e.get()).filter(|e| !e.is_zero());
            let mut at = start;
            let mut firing = 0u32;
            loop {
                firings.push(FiringPlan {
                    fault: index,
                    firing,
                    at,
                    rollback_at: None,
                });
                let Some(step) = step else { break };
                at += step;
                firing += 1;
                if at >= end || firing > 10_000 {
                    break;
                }
            }
        } else {
            firings.push(FiringPlan {
                fault: index,
                firing: 0,
                at: start,
                rollback_at: Some(end),
            });
        }
    }
    firings.sort_by_key(|f| (f.at, f.fault));
    firings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_experiment;

    #[test]
    fn instant_faults_repeat_and_lasting_faults_roll_back_at_the_end_of_their_window() {
        let text = r#"
apiVersion: steadfast.dev/v1alpha1
kind: Experiment
metadata: {name: t}
spec:
  duration: 1m
  steadyState:
    probes: [{name: web, http: {url: "http://127.0.0.1/"}}]
  faults:
    - {name: kill, at: 5s, for: 20s, every: 5s, podKill: {target: {namespaces: [a]}}}
    - {name: cordon, at: 10s, for: 30s, nodeCordon: {target: {mode: one}}}
"#;
        let (spec, _) = parse_experiment("t.yaml", text).unwrap();
        let firings = plan_firings(&spec.spec.faults);
        let kills: Vec<u64> = firings
            .iter()
            .filter(|f| f.fault == 0)
            .map(|f| f.at.as_secs())
            .collect();
        assert_eq!(kills, vec![5, 10, 15, 20]);
        let cordon = firings.iter().find(|f| f.fault == 1).unwrap();
        assert_eq!(
            (cordon.at.as_secs(), cordon.rollback_at.map(|d| d.as_secs())),
            (10, Some(40))
        );
        assert!(firings.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
