//! The lines `steadfast rollback` and `run --recover-first` print while a recovery applies the
//! pending undo records: one per record, as it happens.

use std::io::{self, Write};

use crate::fault::{RollbackOutcome, UndoRecord};
use crate::journal::{Pending, RecoveryObserver, UndoReport};

/// Prints a line per applied record to `out`, after the line `header` gives (if any) once the
/// recovery starts applying. The first output error is kept for [`ReportLines::finish`] and
/// silences the rest, so printing never stops a recovery halfway.
pub(crate) struct ReportLines<'o, H> {
    out: &'o mut dyn Write,
    header: H,
    written: io::Result<()>,
}

impl<'o, H: FnMut(&Pending) -> Option<String>> ReportLines<'o, H> {
    /// Prints to `out`; `header` is called once, when records start being applied.
    pub(crate) fn new(out: &'o mut dyn Write, header: H) -> Self {
        Self {
            out,
            header,
            written: Ok(()),
        }
    }

    /// The first output error, if any.
    ///
    /// # Errors
    /// When a line could not be written.
    pub(crate) fn finish(self) -> io::Result<()> {
        self.written
    }
}

impl<H: FnMut(&Pending) -> Option<String>> RecoveryObserver for ReportLines<'_, H> {
    fn applying(&mut self, pending: &Pending) {
        if let (Ok(()), Some(line)) = (&self.written, (self.header)(pending)) {
            self.written = writeln!(self.out, "{line}");
        }
    }

    fn applied(&mut self, record: &UndoRecord, report: &UndoReport) {
        if self.written.is_ok() {
            self.written = print_report(self.out, record, report);
        }
    }
}

fn print_report(
    out: &mut dyn Write,
    record: &UndoRecord,
    report: &UndoReport,
) -> std::io::Result<()> {
    let detail = match &report.result {
        Ok(RollbackOutcome::Restored { detail }) => format!("restored: {detail}"),
        Ok(RollbackOutcome::AlreadyRestored { detail }) => format!("already restored: {detail}"),
        Err(error) => format!("FAILED: {error}"),
    };
    let tries = match report.attempts {
        1 => String::new(),
        n => format!(" (after {n} attempts)"),
    };
    writeln!(
        out,
        "{} ({}): {detail}{tries}",
        record.id,
        record.action.describe()
    )?;
    if let Some(err) = &report.unjournaled {
        writeln!(out, "{}: could not journal this: {err}", record.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::rollback::tests::record;

    #[test]
    fn each_record_gets_its_line_after_the_header_and_an_unjournaled_one_says_so() {
        let mut out = Vec::new();
        let mut lines = ReportLines::new(&mut out, |pending: &Pending| {
            Some(format!("{} pending undo record(s)", pending.records.len()))
        });
        let pending = Pending {
            records: vec![record("a"), record("b")],
            local: 2,
            ..Pending::default()
        };
        lines.applying(&pending);
        lines.applied(
            &record("b"),
            &UndoReport {
                result: Ok(RollbackOutcome::Restored {
                    detail: "uncordoned".into(),
                }),
                attempts: 5,
                unjournaled: None,
            },
        );
        lines.applied(
            &record("a"),
            &UndoReport {
                result: Err("connection refused".into()),
                attempts: 1,
                unjournaled: Some("disk full".into()),
            },
        );
        lines.finish().unwrap();

        let printed = String::from_utf8(out).unwrap();
        let describe = record("a").action.describe();
        assert_eq!(
            printed,
            format!(
                "2 pending undo record(s)\n\
                 b ({describe}): restored: uncordoned (after 5 attempts)\n\
                 a ({describe}): FAILED: connection refused\n\
                 a: could not journal this: disk full\n"
            )
        );
    }
}
