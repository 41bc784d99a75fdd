//! One file per subcommand; each turns its `*Args` into work and returns an [`ExitStatus`].

pub mod schema;
pub mod validate;

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::exit::ExitStatus;

/// Runs a parsed command line, writing data to `out`.
///
/// # Errors
/// I/O errors writing output; failures of the work itself map to an [`ExitStatus`].
pub async fn dispatch(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, &cli.global, out),
        Command::Schema => schema::run(out),
    }
}
