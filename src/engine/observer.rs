//! What a run shows while it goes. The engine reports phases, events and a periodic status to a
//! [`RunObserver`]; whether that becomes a terminal progress line or nothing is the caller's
//! choice, so the engine stays free of terminal concerns.

use std::time::Duration;

use super::timeline::{Event, Phase};

/// The live state of a run, sent about once per abort-check period.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The phase the run is in.
    pub phase: Phase,
    /// Time left in the current wait (the phase, or until the next fault action).
    pub left: Duration,
    /// Availability (0–1) of each HTTP probe over the last few seconds, by probe name.
    pub availability: Vec<(String, Option<f64>)>,
    /// What the run still waits for once its phases are over (self-healing evidence), so that
    /// no wait is silent.
    pub waiting_for: Option<String>,
}

/// Receives a run's progress. Every method has an empty default.
pub trait RunObserver: Send + Sync {
    /// Something happened: a phase began, a fault acted, an undo was applied, the run aborted.
    fn event(&self, _event: &Event) {}
    /// The periodic status.
    fn status(&self, _status: &Status) {}
    /// The run is over; a display should clear itself.
    fn finished(&self) {}
}

/// Shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl RunObserver for Silent {}

/// A phase as people read it.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::SteadyBefore => "steady state before",
        Phase::Faults => "faults",
        Phase::Rollback => "rollback",
        Phase::Recovery => "recovery",
        Phase::SteadyAfter => "steady state after",
        Phase::Finished => "finished",
    }
}

/// One line for a status: `faults · 12s left · web 99.8%`.
pub fn render(status: &Status) -> String {
    let phase = phase_name(status.phase);
    let mut line = phase.to_owned();
    if let Some(waiting) = &status.waiting_for {
        line.push_str(&format!(" · waiting for {waiting}"));
    }
    line.push_str(&format!(
        " · {}s left",
        status.left.as_secs_f64().ceil() as u64
    ));
    for (probe, availability) in &status.availability {
        match availability {
            Some(ratio) => line.push_str(&format!(" · {probe} {:.1}%", ratio * 100.0)),
            None => line.push_str(&format!(" · {probe} –")),
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_names_phase_countdown_and_each_probe() {
        let status = Status {
            phase: Phase::Faults,
            left: Duration::from_millis(11_200),
            availability: vec![("web".into(), Some(0.9981)), ("api".into(), None)],
            waiting_for: None,
        };
        assert_eq!(render(&status), "faults · 12s left · web 99.8% · api –");
        let waiting = Status {
            phase: Phase::Finished,
            left: Duration::from_millis(4_100),
            availability: Vec::new(),
            waiting_for: Some("self-healing of kill-web".into()),
        };
        assert_eq!(
            render(&waiting),
            "finished · waiting for self-healing of kill-web · 5s left"
        );
    }
}
