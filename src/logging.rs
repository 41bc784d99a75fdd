//! Logs go to stderr through tracing, so stdout stays clean for data a pipeline consumes.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{ColorChoice, GlobalArgs};

/// The environment variable holding a tracing filter (e.g. `steadfast=debug,kube=info`).
pub const LOG_ENV: &str = "STEADFAST_LOG";

/// Whether to colour what goes to a stream that may or may not be a terminal.
pub fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// The default filter for the `-v`/`-q` counts.
fn default_directive(verbose: u8, quiet: u8) -> &'static str {
    match (verbose, quiet) {
        (_, q) if q >= 2 => "off",
        (_, 1) => "error",
        (0, _) => "info",
        (1, _) => "steadfast=debug,info",
        _ => "steadfast=trace,debug",
    }
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(args: &GlobalArgs) {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| EnvFilter::new(default_directive(args.verbose, args.quiet)));
    let ansi = use_color(args.color, std::io::stderr().is_terminal());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_filters() {
        assert_eq!(default_directive(0, 0), "info");
        assert_eq!(default_directive(0, 1), "error");
        assert_eq!(default_directive(0, 2), "off");
        assert!(default_directive(1, 0).contains("debug"));
    }

    #[test]
    fn explicit_choices_ignore_the_terminal() {
        assert!(use_color(ColorChoice::Always, false));
        assert!(!use_color(ColorChoice::Never, true));
        assert!(!use_color(ColorChoice::Auto, false));
    }
}
