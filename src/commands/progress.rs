//! The progress line of `steadfast run` on a terminal: phase, countdown and live availability,
//! redrawn in place on stderr. Only when stderr is a terminal; otherwise the tracing logs are
//! all there is, so CI logs and pipes get no control characters.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::observer::{RunObserver, Status, phase_name, render};
use crate::engine::{Event, EventKind};

/// How often the spinner moves between status updates.
const TICK: Duration = Duration::from_millis(120);

/// A progress line on stderr.
pub struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    /// A progress line when stderr is a terminal, `None` otherwise. Colour follows `NO_COLOR`.
    pub fn for_stderr() -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let template = if color {
            "{spinner:.cyan} {elapsed:>4} {msg}"
        } else {
            "{spinner} {elapsed:>4} {msg}"
        };
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(TICK);
        crate::logging::set_progress(Some(bar.clone()));
        Some(Self { bar })
    }
}

impl RunObserver for TerminalProgress {
    fn event(&self, event: &Event) {
        match &event.kind {
            EventKind::PhaseStarted { phase } => {
                self.bar.set_message(phase_name(*phase).to_owned());
            }
            EventKind::Aborted { reason } => {
                self.bar.set_message(format!("aborting: {reason}"));
            }
            _ => {}
        }
    }

    fn status(&self, status: &Status) {
        self.bar.set_message(render(status));
    }

    fn finished(&self) {
        crate::logging::set_progress(None);
        self.bar.finish_and_clear();
    }
}

impl Drop for TerminalProgress {
    fn drop(&mut self) {
        crate::logging::set_progress(None);
        self.bar.finish_and_clear();
    }
}
