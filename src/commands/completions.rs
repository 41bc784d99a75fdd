//! `steadfast completions SHELL` and `steadfast man`: generated from the clap definitions, so
//! neither can fall behind the flags the binary accepts.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionShell, CompletionsArgs};
use crate::exit::ExitStatus;

/// Prints the completion script for the shell.
///
/// # Errors
/// When stdout cannot be written.
pub fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let shell = match args.shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "steadfast", out);
    Ok(ExitStatus::Success)
}

/// The man page (roff). No date is rendered, so the committed `docs/steadfast.1` only changes
/// when the command line does.
///
/// # Errors
/// When the page cannot be rendered.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    Ok(page)
}

/// Prints the man page.
///
/// # Errors
/// When stdout cannot be written.
pub fn man(out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    out.write_all(&man_page()?)?;
    Ok(ExitStatus::Success)
}
