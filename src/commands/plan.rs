//! `steadfast plan`: a dry run. Faults resolve their targets and undo records with reads only;
//! nothing is journaled, locked or changed.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{OutputFormat, PlanArgs};
use crate::exit::ExitStatus;
use crate::fault::FaultPlan;
use crate::infra::wiring;
use crate::spec::{DurationSpec, load_file};

/// One fault's first firing, as it would happen now.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlannedFault {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<FaultPlan>,
    /// How the undo records would restore it.
    undo: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

/// The whole dry run.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Plan {
    experiment: String,
    seed: u64,
    /// Steady state before + fault phase + recovery timeout + steady state after, at most.
    expected_duration_seconds: f64,
    faults: Vec<PlannedFault>,
}

/// Prints the plan; exit 2 when any fault would be refused (over the caps, no target).
///
/// # Errors
/// When the cluster cannot be reached or output fails.
pub async fn run(args: &PlanArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let loaded = match load_file(&args.file) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            return Ok(ExitStatus::Invalid);
        }
    };
    let spec = loaded.spec;
    let cluster = super::cluster_of(&args.cluster);
    let connected = wiring::connect(&spec, &cluster).await?;
    let seed = args.seed.or(spec.spec.seed).unwrap_or_else(rand::random);
    let faults = wiring::faults(&spec, &connected, seed)?;
    let mut planned = Vec::new();
    for fault in &faults {
        let entry = match fault.plan("plan", 0).await {
            Ok(plan) => PlannedFault {
                name: fault.name().to_owned(),
                undo: plan.undo.iter().map(|u| u.action.describe()).collect(),
                plan: Some(plan),
                refused: None,
            },
            Err(err) => PlannedFault {
                name: fault.name().to_owned(),
                plan: None,
                undo: Vec::new(),
                refused: Some(err.to_string()),
            },
        };
        planned.push(entry);
    }
    let steady = &spec.spec.steady_state;
    let expected = steady.before.get()
        + spec.spec.duration.get()
        + steady.recovery_timeout.get()
        + steady.after.get();
    let plan = Plan {
        experiment: spec.metadata.name.clone(),
        seed,
        expected_duration_seconds: expected.as_secs_f64(),
        faults: planned,
    };
    let refused = plan.faults.iter().any(|f| f.refused.is_some());
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &plan)?;
            writeln!(out)?;
        }
        OutputFormat::Text => print_text(&plan, expected, out)?,
    }
    Ok(if refused {
        ExitStatus::Invalid
    } else {
        ExitStatus::Success
    })
}

fn print_text(plan: &Plan, expected: Duration, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "experiment {} (seed {}), at most {}",
        plan.experiment,
        plan.seed,
        DurationSpec(expected)
    )?;
    for fault in &plan.faults {
        match (&fault.plan, &fault.refused) {
            (Some(p), _) => {
                writeln!(
                    out,
                    "\n{} ({}): {} of {} candidate(s)",
                    fault.name,
                    p.kind.key(),
                    p.targets.len(),
                    p.candidates
                )?;
                for target in &p.targets {
                    let place = [target.node.as_deref(), target.zone.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ");
                    writeln!(
                        out,
                        "  target  {} {}",
                        target.display_name(),
                        if place.is_empty() {
                            String::new()
                        } else {
                            format!("({place})")
                        }
                    )?;
                }
                for undo in &fault.undo {
                    writeln!(out, "  undo    {undo}")?;
                }
                for step in &p.irreversible {
                    writeln!(out, "  IRREVERSIBLE  {step}")?;
                }
            }
            (None, Some(reason)) => writeln!(out, "\n{}: REFUSED: {reason}", fault.name)?,
            (None, None) => {}
        }
    }
    Ok(())
}
