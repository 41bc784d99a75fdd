//! One file per subcommand; each turns its `*Args` into work and returns an [`ExitStatus`].

pub mod advise;
pub mod completions;
pub mod gate;
pub mod halt;
pub mod init;
pub mod live;
pub mod live_http;
mod logged_out;
pub mod plan;
pub mod probe;
pub mod progress;
pub(crate) mod publish;
mod recovery;
pub mod report;
pub mod rollback;
pub mod run;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod schedule;
pub mod schema;
pub mod validate;

use std::io::Write;

use crate::cli::{Cli, ClusterFlags, Command};
use crate::infra::wiring::ClusterArgs;
pub(crate) use logged_out::LoggedOut;

/// The cluster a command's flags name.
pub(crate) fn cluster_of(flags: &ClusterFlags) -> ClusterArgs {
    ClusterArgs {
        kubeconfig: flags.kubeconfig.clone(),
        context: flags.context.clone(),
    }
}
use crate::exit::ExitStatus;

/// Runs a parsed command line, writing data to `out`.
///
/// # Errors
/// I/O errors writing output; failures of the work itself map to an [`ExitStatus`].
pub async fn dispatch(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, &cli.global, out),
        Command::Run(args) => run::run(&args, out).await,
        Command::Plan(args) => plan::run(&args, out).await,
        Command::Probe(args) => probe::run(&args, out).await,
        Command::Rollback(args) => rollback::run(&args, out).await,
        Command::Halt(args) => halt::halt(&args, out).await,
        Command::Resume(args) => halt::resume(&args, out).await,
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => run::demo(&args, out).await,
        #[cfg(not(feature = "sandbox"))]
        Command::Demo(_) => {
            anyhow::bail!("this build has no sandbox (built without the `sandbox` feature)")
        }
        Command::Schedule(args) => schedule::run(&args, out).await,
        Command::Schema(args) => schema::run(&args, out),
        Command::Report(args) => report::run(&args, out).await,
        Command::Gate(args) => gate::run(&args, out).await,
        Command::Completions(args) => completions::completions(&args, out),
        Command::Man => completions::man(out),
        Command::Advise(args) => advise::run(&args, out).await,
        Command::Init(args) => init::run(&args, out).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => sandbox::run(&args, out).await,
        #[cfg(not(feature = "sandbox"))]
        Command::Sandbox(_) => {
            anyhow::bail!("this build has no sandbox (built without the `sandbox` feature)")
        }
    }
}
