//! Output that cannot change an exit code: once a command may have changed something, its exit
//! code must say how the rollback went, and a closed stdout (a pipe whose reader left) must
//! not turn "rollback incomplete" into a tool error.

use std::io::{self, Write};

use tracing::error;

/// Writes through to `inner`; the first failure is logged and every write after it is
/// dropped, so callers' `?` never fires on output.
pub(crate) struct LoggedOut<'a> {
    inner: &'a mut dyn Write,
    failed: bool,
}

impl<'a> LoggedOut<'a> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: &'a mut dyn Write) -> Self {
        Self {
            inner,
            failed: false,
        }
    }

    fn failed(&mut self, err: &io::Error) {
        error!("cannot write the output ({err}); the exit code still tells the outcome");
        self.failed = true;
    }
}

impl Write for LoggedOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Err(err),
            Err(err) => {
                self.failed(&err);
                Ok(buf.len())
            }
            ok => ok,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Err(err),
            Err(err) => {
                self.failed(&err);
                Ok(())
            }
            ok => ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stdout whose reader has gone.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_output_is_logged_not_returned() {
        let mut closed = ClosedPipe;
        let mut out = LoggedOut::new(&mut closed);
        assert!(writeln!(out, "report: somewhere").is_ok());
        assert!(out.flush().is_ok());
        assert!(out.failed);
    }

    #[test]
    fn a_working_output_receives_everything() {
        let mut buffer = Vec::new();
        let mut out = LoggedOut::new(&mut buffer);
        writeln!(out, "a").unwrap();
        writeln!(out, "b").unwrap();
        assert!(!out.failed);
        assert_eq!(buffer, b"a\nb\n");
    }
}
