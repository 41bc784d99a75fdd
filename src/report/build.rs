//! From a finished run to the report model.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::model::*;
use crate::engine::{EventKind as Happened, FiringTiming, RunOutcome};
use crate::fault::{Effect, Healing};
use crate::measure::{ConditionLog, MeasurementStore};
use crate::spec::{ExperimentSpec, ProbeKind};
use crate::verdict::{TimeWindow, Verdict};

/// Series resolution in the report: fine enough to see a one-second outage on a chart.
pub const SERIES_RESOLUTION: Duration = Duration::from_millis(500);

/// What the probes measured, by probe name.
#[derive(Default)]
pub struct ProbeData<'a> {
    /// HTTP probes.
    pub http: BTreeMap<String, &'a MeasurementStore>,
    /// Condition probes.
    pub conditions: BTreeMap<String, (ProbeKind, &'a ConditionLog)>,
}

/// Everything a report is made from.
pub struct ReportInput<'a> {
    /// The experiment.
    pub spec: &'a ExperimentSpec,
    /// The file it came from.
    pub file: Option<String>,
    /// Where it ran.
    pub cluster: Option<ClusterInfo>,
    /// The run.
    pub outcome: &'a RunOutcome,
    /// The measurements.
    pub probes: ProbeData<'a>,
    /// API errors and retries per endpoint, from the Kubernetes and AWS adapters.
    pub api_calls: Vec<EndpointCalls>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// SHA-256 of the spec's canonical JSON.
pub fn spec_hash(spec: &ExperimentSpec) -> String {
    let canonical = serde_json::to_vec(spec).unwrap_or_default();
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds the report.
pub fn build_report(input: &ReportInput<'_>) -> Report {
    let outcome = input.outcome;
    let spec = input.spec;
    let windows = &outcome.windows;
    let named: Vec<(WindowName, TimeWindow)> = [
        (WindowName::Before, windows.before),
        (WindowName::During, windows.during),
        (WindowName::After, windows.after),
        (WindowName::Run, windows.run),
    ]
    .into_iter()
    .filter_map(|(name, w)| w.map(|w| (name, w)))
    .collect();

    let mut verdict = verdict_info(&outcome.verdict);
    if let Some(note) = super::effect::no_impact_note(outcome, &spec.spec.faults, &input.probes) {
        verdict.summary = format!("{}; {note}", verdict.summary);
    }
    let control_plane = super::control_plane::control_plane(&input.api_calls);
    if let Some(note) = control_plane
        .as_ref()
        .and_then(super::control_plane::verdict_note)
    {
        verdict.summary = format!("{}; {note}", verdict.summary);
    }
    let probes = probe_reports(spec, &input.probes, &named, windows.run);

    let faults = spec
        .spec
        .faults
        .iter()
        .map(|fault| {
            let mut targets = Vec::new();
            let mut firings = 0;
            let mut firing_times = Vec::new();
            for event in &outcome.events {
                if let Happened::FaultInjected {
                    fault: name,
                    effects,
                    firing,
                    timing,
                    ..
                } = &event.kind
                    && name == &fault.name
                {
                    firings += 1;
                    let healing = outcome.healing_by_firing.get(&(name.clone(), *firing));
                    firing_times.push(firing_times_of(*firing, timing, healing));
                    for (i, effect) in effects.iter().enumerate() {
                        let (label, detail) = match &effect.effect {
                            Effect::Applied => (TargetEffect::Applied, None),
                            Effect::BlockedByBudget { budget } => {
                                (TargetEffect::BlockedByBudget, Some(budget.clone()))
                            }
                            Effect::Skipped { reason } => {
                                (TargetEffect::Skipped, Some(reason.clone()))
                            }
                            Effect::Failed { error } => (TargetEffect::Failed, Some(error.clone())),
                        };
                        targets.push(FaultTarget {
                            kind: effect.target.kind,
                            name: effect.target.display_name(),
                            node: effect.target.node.clone(),
                            zone: effect.target.zone.clone(),
                            effect: label,
                            detail,
                            // When this target's own action was issued.
                            at: timing.actions.get(i).unwrap_or(&event.at).as_secs_f64(),
                        });
                    }
                }
            }
            let (effect, detected_at, detection_ms) = super::effect::fault_effect(outcome, fault);
            let (healed, healed_after_seconds) = match outcome.healing.get(&fault.name) {
                Some(Healing::Healed { after }) => (Some(true), Some(secs(*after))),
                Some(Healing::NotHealed) => (Some(false), None),
                _ => (None, None),
            };
            FaultReport {
                name: fault.name.clone(),
                kind: fault
                    .kind()
                    .map_or_else(|| OrOther::Other("unknown".to_owned()), OrOther::Known),
                window: windows.faults.get(&fault.name).copied().map(Span::from),
                firings,
                targets,
                healed_after_seconds,
                healed,
                firing_times,
                effect,
                detected_at,
                detection_ms,
            }
        })
        .collect();

    let applied = outcome
        .events
        .iter()
        .filter(|e| matches!(e.kind, Happened::RolledBack { .. }))
        .count() as u32;
    let mut report = Report {
        report_version: REPORT_VERSION,
        tool: ToolInfo {
            name: "steadfast".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        run: RunInfo {
            id: outcome.run_id.clone(),
            seed: outcome.seed,
            started_at: outcome.started_at,
            finished_at: outcome.finished_at,
            duration_seconds: (outcome.finished_at - outcome.started_at).num_milliseconds() as f64
                / 1000.0,
        },
        experiment: ExperimentInfo {
            name: spec.metadata.name.clone(),
            labels: spec.metadata.labels.clone(),
            description: spec.spec.description.clone(),
            spec_sha256: spec_hash(spec),
            file: input.file.clone(),
        },
        cluster: input.cluster.clone(),
        verdict,
        exit_code: outcome.verdict.exit_status().code(),
        windows: Windows::from(windows),
        timeline: {
            let mut timeline: Vec<TimelineEvent> =
                outcome.events.iter().map(timeline_event).collect();
            timeline.extend(super::effect::effect_events(outcome));
            timeline.sort_by(|a, b| a.at.total_cmp(&b.at));
            timeline
        },
        faults,
        probes,
        targets: outcome
            .results
            .iter()
            .map(|r| TargetReport {
                name: r.name.clone(),
                probe: r.probe.clone(),
                measure: r.measure.into(),
                window: r.window,
                required: r.required.clone(),
                measured: r.measured.clone(),
                value: r.value,
                passed: r.passed,
                detail: r.detail.clone(),
                span: r.span.map(Span::from),
            })
            .collect(),
        rollback: RollbackReport {
            complete: outcome.pending.is_empty(),
            pending: outcome
                .pending
                .iter()
                .map(|r| format!("{}: {}", r.id, r.action.describe()))
                .collect(),
            applied,
        },
        resilience_score: None,
        control_plane,
    };
    report.resilience_score = Some(super::score::run_score(&report));
    report
}

/// Each probe of `spec` over the `named` windows, in spec order; a probe's per-endpoint probes
/// (`<probe>@<pod>`) follow it.
pub fn probe_reports(
    spec: &ExperimentSpec,
    data: &ProbeData<'_>,
    named: &[(WindowName, TimeWindow)],
    run: Option<TimeWindow>,
) -> Vec<ProbeReport> {
    let mut probes = Vec::new();
    for probe in &spec.spec.steady_state.probes {
        if let Some(store) = data.http.get(&probe.name) {
            probes.push(http_probe_report(&probe.name, store, named, run));
            let prefix = format!("{}@", probe.name);
            let endpoints = data
                .http
                .range(prefix.clone()..)
                .take_while(|(name, _)| name.starts_with(&prefix));
            for (name, store) in endpoints {
                let mut report = http_probe_report(name, store, named, run);
                report.endpoint_of = Some(probe.name.clone());
                probes.push(report);
            }
        } else if let Some((kind, log)) = data.conditions.get(&probe.name) {
            probes.push(condition_report(&probe.name, *kind, log, named));
        }
    }
    probes
}

/// One firing's times; its healed instant counts from its first action.
fn firing_times_of(firing: u32, timing: &FiringTiming, healing: Option<&Healing>) -> FiringTimes {
    let first = timing.actions.iter().min().copied();
    let (healed, healed_after) = match healing {
        Some(Healing::Healed { after }) => (Some(true), Some(*after)),
        Some(Healing::NotHealed) => (Some(false), None),
        _ => (None, None),
    };
    FiringTimes {
        firing,
        scheduled_at: secs(timing.scheduled),
        actions: timing.actions.iter().copied().map(secs).collect(),
        lag_ms: timing.lag().map(ms),
        spread_ms: timing.spread().map(ms),
        healed_at: first.zip(healed_after).map(|(f, a)| secs(f + a)),
        healed_after_seconds: healed_after.map(secs),
        healed,
    }
}

fn verdict_info(verdict: &Verdict) -> VerdictInfo {
    let (summary, missed) = match verdict {
        Verdict::Passed => (
            "every target was met and every fault rolled back".to_owned(),
            Vec::new(),
        ),
        Verdict::Failed { missed } => {
            (format!("{} target(s) missed", missed.len()), missed.clone())
        }
        Verdict::NotSteady { reason } => (
            format!("the steady state did not hold before the faults: {reason}"),
            Vec::new(),
        ),
        Verdict::Aborted { reason } => (format!("aborted and rolled back: {reason}"), Vec::new()),
        Verdict::RollbackIncomplete { pending } => (
            format!(
                "{} undo record(s) could not be applied: run `steadfast rollback`",
                pending.len()
            ),
            Vec::new(),
        ),
    };
    VerdictInfo {
        outcome: Outcome::from(verdict),
        summary,
        missed,
    }
}

fn timeline_event(event: &crate::engine::Event) -> TimelineEvent {
    let at = event.at.as_secs_f64();
    let plain = |kind: EventKind, fault: Option<&String>, detail: String| TimelineEvent {
        at,
        event: kind.into(),
        fault: fault.cloned(),
        detail,
        targets: Vec::new(),
    };
    match &event.kind {
        Happened::PhaseStarted { phase } => plain(
            EventKind::PhaseStarted,
            None,
            serde_json::to_value(phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        Happened::FaultInjected {
            fault,
            firing,
            targets,
            ..
        } => TimelineEvent {
            at,
            event: EventKind::FaultInjected.into(),
            fault: Some(fault.clone()),
            detail: format!("firing {firing}: {} target(s)", targets.len()),
            targets: targets.iter().map(|t| t.display_name()).collect(),
        },
        Happened::FaultSkipped { fault, reason, .. } => {
            plain(EventKind::FaultSkipped, Some(fault), reason.clone())
        }
        Happened::RolledBack { fault, outcome, .. } => {
            let detail = match outcome {
                crate::fault::RollbackOutcome::Restored { detail }
                | crate::fault::RollbackOutcome::AlreadyRestored { detail } => detail.clone(),
            };
            plain(EventKind::RolledBack, Some(fault), detail)
        }
        Happened::RollbackFailed { fault, error, .. } => {
            plain(EventKind::RollbackFailed, Some(fault), error.clone())
        }
        Happened::Aborted { reason } => plain(EventKind::Aborted, None, reason.clone()),
    }
}

fn http_probe_report(
    name: &str,
    store: &MeasurementStore,
    named: &[(WindowName, TimeWindow)],
    run: Option<TimeWindow>,
) -> ProbeReport {
    let mut windows = BTreeMap::new();
    for (window_name, w) in named {
        let window = *w;
        let stats = store.window(window);
        let failures = crate::measure::FailureKind::ALL
            .iter()
            .map(|kind| (failure_name(*kind).to_owned(), stats.failures.get(*kind)))
            .filter(|(_, n)| *n > 0)
            .collect();
        windows.insert(
            *window_name,
            ProbeWindow {
                attempts: stats.attempts,
                successes: stats.successes,
                failures,
                availability: stats.availability,
                latency_ms: stats.latency.as_ref().map(|l| Percentiles {
                    p50: ms(l.p50),
                    p90: ms(l.p90),
                    p99: ms(l.p99),
                    p999: ms(l.p999),
                    max: ms(l.max),
                }),
                longest_outage_seconds: Some(
                    store.longest_outage(window).map_or(0.0, |o| secs(o.length)),
                ),
                satisfied: None,
            },
        );
    }
    let series = run
        .and_then(|w| store.series(w, SERIES_RESOLUTION).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|p| SeriesPoint {
            t: secs(p.start),
            attempts: p.attempts,
            success_ratio: p.success_ratio,
            p50_ms: p.p50.map(ms),
            p99_ms: p.p99.map(ms),
            backends: p.backends,
        })
        .collect();
    let backends = run
        .map(|w| {
            let shares = store.backend_shares(w);
            shares
                .backends
                .iter()
                .map(|b| BackendShare {
                    backend: b.backend.clone(),
                    successes: b.successes,
                    share: b.share,
                    expected_share: b.expected_share,
                    served_after_deletion: shares
                        .served_after_deletion
                        .iter()
                        .filter(|s| s.backend == b.backend)
                        .map(|s| s.responses)
                        .sum(),
                })
                .collect()
        })
        .unwrap_or_default();
    ProbeReport {
        name: name.to_owned(),
        kind: ProbeKind::Http.into(),
        windows,
        series,
        backends,
        evaluations: Vec::new(),
        transitions: Vec::new(),
        endpoint_of: None,
    }
}

fn condition_report(
    name: &str,
    kind: ProbeKind,
    log: &ConditionLog,
    named: &[(WindowName, TimeWindow)],
) -> ProbeReport {
    let windows = named
        .iter()
        .map(|(window_name, w)| {
            let evaluations = log.between(w.start, w.end);
            (
                *window_name,
                ProbeWindow {
                    attempts: evaluations.len() as u64,
                    successes: evaluations.iter().filter(|e| e.held).count() as u64,
                    failures: BTreeMap::new(),
                    availability: None,
                    latency_ms: None,
                    longest_outage_seconds: None,
                    satisfied: log.satisfied_ratio(w.start, w.end),
                },
            )
        })
        .collect();
    ProbeReport {
        name: name.to_owned(),
        kind: kind.into(),
        windows,
        series: Vec::new(),
        backends: Vec::new(),
        evaluations: log
            .evaluations()
            .iter()
            .map(|e| Evaluation {
                at: secs(e.at),
                held: e.held,
                value: e.value,
                detail: e.detail.clone(),
            })
            .collect(),
        transitions: log
            .transitions()
            .into_iter()
            .map(|t| Transition {
                at: secs(t.at),
                held: t.held,
                detail: t.detail,
            })
            .collect(),
        endpoint_of: None,
    }
}

fn failure_name(kind: crate::measure::FailureKind) -> &'static str {
    use crate::measure::FailureKind::*;
    match kind {
        Connect => "connect",
        Timeout => "timeout",
        Status => "status",
        Body => "body",
        Latency => "latency",
        Protocol => "protocol",
        Dropped => "dropped",
    }
}
