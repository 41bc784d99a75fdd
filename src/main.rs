//! The `steadfast` binary: parse arguments, set up logging, run the command, map the outcome to
//! an exit code. Everything else lives in the library so tests drive it in-process.

use std::process::ExitCode;

use clap::Parser;
use steadfast::cli::Cli;
use steadfast::exit::ExitStatus;

fn main() -> ExitCode {
    let cli = Cli::parse();
    steadfast::logging::init(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitStatus::Invalid.into();
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(steadfast::commands::dispatch(cli, &mut stdout)) {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitStatus::Invalid.into()
        }
    }
}
