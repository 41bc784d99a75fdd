//! The report's view of what each fault did: its change confirmed or `noEffect`, when the system
//! noticed it, and whether the probes saw any impact, so a reader tells "resilient" from "the
//! fault missed".

use super::build::ProbeData;
use super::model::{EffectStatus as Status, EventKind, FaultEffect, TimelineEvent};
use crate::engine::{EffectStatus, FiringEffect, Noticed, RunOutcome};
use crate::spec::FaultSpec;

/// What the fault table shows about one fault: effect, first detection, slowest detection (ms).
pub fn fault_effect(
    outcome: &RunOutcome,
    fault: &FaultSpec,
) -> (Option<FaultEffect>, Option<f64>, Option<f64>) {
    let firings: Vec<&FiringEffect> = outcome
        .effects
        .iter()
        .filter(|e| e.fault == fault.name)
        .collect();
    if firings.is_empty() {
        return (None, None, None);
    }
    let missed = firings.iter().find_map(|e| match &e.effect {
        EffectStatus::NoEffect { reason } => Some(reason.clone()),
        _ => None,
    });
    let confirmed_at = firings.iter().find_map(|e| match e.effect {
        EffectStatus::Confirmed { at } => Some(at.as_secs_f64()),
        _ => None,
    });
    let status = if missed.is_some() {
        Status::NoEffect
    } else if firings
        .iter()
        .all(|e| matches!(e.effect, EffectStatus::Confirmed { .. }))
    {
        Status::Confirmed
    } else {
        Status::Unchecked
    };
    let detected_at = firings.iter().find_map(|e| match e.detection {
        Noticed::Detected { at } => Some(at.as_secs_f64()),
        _ => None,
    });
    let watched: Vec<&&FiringEffect> = firings
        .iter()
        .filter(|e| e.detection != Noticed::NotApplicable)
        .collect();
    let detection_ms = watched
        .iter()
        .map(|e| e.detection_after())
        .collect::<Option<Vec<_>>>()
        .and_then(|all| all.into_iter().max())
        .map(|d| d.as_secs_f64() * 1000.0);
    let effect = FaultEffect {
        status,
        confirmed_at,
        reason: missed,
        allowed: fault.allow_no_effect,
    };
    (Some(effect), detected_at, detection_ms)
}

/// Timeline entries for every firing: confirmed (or no effect), then detected.
pub fn effect_events(outcome: &RunOutcome) -> Vec<TimelineEvent> {
    let mut events = Vec::new();
    for e in &outcome.effects {
        let event = |kind: EventKind, at: f64, detail: String| TimelineEvent {
            at,
            event: kind.into(),
            fault: Some(e.fault.clone()),
            detail,
            targets: Vec::new(),
        };
        match &e.effect {
            EffectStatus::Confirmed { at } => events.push(event(
                EventKind::FaultConfirmed,
                at.as_secs_f64(),
                format!(
                    "firing {}: the change shows through the API, {:.0} ms after the injection",
                    e.firing,
                    at.saturating_sub(e.injected_at).as_secs_f64() * 1000.0
                ),
            )),
            EffectStatus::NoEffect { reason } => events.push(event(
                EventKind::FaultNoEffect,
                e.injected_at.as_secs_f64(),
                format!("firing {}: no effect: {reason}", e.firing),
            )),
            EffectStatus::Unchecked => {}
        }
        if let (Noticed::Detected { at }, Some(after)) = (e.detection, e.detection_after()) {
            events.push(event(
                EventKind::FaultDetected,
                at.as_secs_f64(),
                format!(
                    "firing {}: the system noticed {:.1}s after the injection",
                    e.firing,
                    after.as_secs_f64()
                ),
            ));
        }
    }
    events
}

/// One sentence for the summary naming every fault whose window the probes went through
/// untouched, and whether that is resilience (the change showed) or a miss (it did not).
pub fn no_impact_note(
    outcome: &RunOutcome,
    faults: &[FaultSpec],
    data: &ProbeData<'_>,
) -> Option<String> {
    let mut quiet = Vec::new();
    for fault in faults {
        let Some(window) = outcome.windows.faults.get(&fault.name) else {
            continue;
        };
        let (effect, _, _) = fault_effect(outcome, fault);
        let Some(effect) = effect else { continue };
        let http_hit = data
            .http
            .iter()
            .filter(|(name, _)| !name.contains('@'))
            .any(|(_, store)| {
                let stats = store.window(*window);
                stats.attempts > stats.successes
            });
        let condition_hit = data.conditions.values().any(|(_, log)| {
            log.satisfied_ratio(window.start, window.end)
                .is_some_and(|r| r < 1.0)
        });
        let probed = !data.http.is_empty() || !data.conditions.is_empty();
        if probed && !http_hit && !condition_hit {
            let why = match effect.status {
                Status::Confirmed => "its change was confirmed: the system absorbed it",
                Status::NoEffect => "it had no effect: the fault missed",
                Status::Unchecked => "its change could not be read back",
            };
            quiet.push(format!("`{}` ({why})", fault.name));
        }
    }
    (!quiet.is_empty()).then(|| format!("the probes saw no impact of {}", quiet.join(", ")))
}
