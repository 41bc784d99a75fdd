//! Command-line arguments. `*Args` structs are the CLI layer; commands turn them into plans.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Chaos experiments that verify high availability on Kubernetes and AWS.
#[derive(Debug, Parser)]
#[command(name = "steadfast", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Logging and colour.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// More log output (-v debug, -vv trace); STEADFAST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q errors only, -qq nothing).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// When to use colour; NO_COLOR in the environment means never unless `always`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Output format of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    #[default]
    Text,
    /// For machines.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an experiment: steady state, faults, rollback, verdict, report.
    Run(RunArgs),
    /// Everything up to injection, with no writes: targets, undo actions, irreversible steps.
    Plan(PlanArgs),
    /// Run only the steady-state probes for a while and say whether the steady state holds.
    Probe(ProbeArgs),
    /// Start the sandbox and run the demo experiment against it, ending with a report.
    Demo(DemoArgs),
    /// Apply every undo record a run left pending (after a crash or kill -9).
    Rollback(RollbackArgs),
    /// Stop all chaos on the cluster: running experiments abort and roll back, new ones refuse.
    Halt(HaltArgs),
    /// Let experiments run again after `halt`.
    Resume(ClusterFlags),
    /// Run every experiment of a directory at its spec.schedule, one at a time, until SIGTERM.
    Schedule(ScheduleArgs),
    /// Check experiment files and report every problem with its line, column and a hint.
    Validate(ValidateArgs),
    /// Print the JSON Schema of experiment files (or, with --report, of report.json).
    Schema(SchemaArgs),
    /// Re-render a saved report.json in another format, or publish its metrics.
    Report(ReportArgs),
    /// Decide a release from run reports and a policy: exit 0 pass, 1 fail, 2 bad input.
    Gate(GateArgs),
    /// A local Kubernetes API with real HTTP backends, for trying steadfast and for tests.
    Sandbox(SandboxArgs),
    /// Print a shell completion script for bash, zsh or fish.
    Completions(CompletionsArgs),
    /// Print the man page (roff): `steadfast man | man -l -`.
    Man,
    /// Read-only HA findings (replicas, budgets, zones, probes); exit 1 at or above --fail-on.
    Advise(AdviseArgs),
    /// Write starter experiments for the Services of a namespace.
    Init(InitArgs),
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells `completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// Arguments of `schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the schema of report.json instead.
    #[arg(long)]
    pub report: bool,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Experiment files, or directories searched for *.yaml / *.yml.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A `report.json` written by `steadfast run`.
    #[arg(value_name = "REPORT.json", required_unless_present = "history")]
    pub file: Option<PathBuf>,
    /// The format to render.
    #[arg(long, value_enum, required_unless_present_any = ["pushgateway", "metrics_textfile", "history"])]
    pub format: Option<ReportFormat>,
    /// An experiment's earlier runs (`<report-dir>/<experiment>`, a directory or
    /// s3://bucket/prefix/experiment): alone, prints a trend table; with `--format html`, adds
    /// a history chart to the page.
    #[arg(long, value_name = "DIR|S3_URL")]
    pub history: Option<PathBuf>,
    /// Region of an s3:// --history bucket (default: the environment's).
    #[arg(long, env = "STEADFAST_REPORT_REGION", value_name = "REGION")]
    pub report_region: Option<String>,
    /// Write here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE", requires = "format")]
    pub output: Option<PathBuf>,
    /// Push the report's metrics to this Pushgateway (base URL).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// Write the report's metrics in Prometheus text format to this file (in a directory:
    /// steadfast-<experiment>.prom), for node_exporter's textfile collector.
    #[arg(long, value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,
}

/// Arguments of `gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// The gate policy (kind: GatePolicy).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// report.json files, or directories or s3://bucket/prefix locations searched for them
    /// (recursively).
    #[arg(required = true, value_name = "REPORT|DIR|S3_URL")]
    pub reports: Vec<PathBuf>,
    /// Region of s3:// locations' buckets (default: the environment's).
    #[arg(long, env = "STEADFAST_REPORT_REGION", value_name = "REGION")]
    pub report_region: Option<String>,
    /// Also write the decision as JUnit XML, a test case per check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Server-side encryption of uploaded reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportSse {
    /// S3-managed keys.
    #[value(name = "AES256", alias = "aes256")]
    Aes256,
    /// The bucket's KMS key (the role needs kms:GenerateDataKey and kms:Decrypt).
    #[value(name = "aws:kms")]
    AwsKms,
}

/// Formats `report` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The report model as JSON.
    Json,
    /// JUnit XML, a test case per target.
    Junit,
    /// A Markdown summary for pull requests.
    Md,
    /// A self-contained HTML page with charts.
    Html,
    /// Prometheus text exposition of the run's metrics.
    Prometheus,
}

/// Arguments of `sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// What to do with the sandbox.
    #[command(subcommand)]
    pub command: SandboxCommand,
}

/// Sandbox subcommands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start the local cluster and keep it running until Ctrl-C.
    Up(SandboxUpArgs),
}

/// Arguments of `sandbox up`.
#[derive(Debug, Args, Clone)]
pub struct SandboxUpArgs {
    /// The topology to create.
    #[arg(
        long,
        default_value = "experiments/sandbox/topology.yaml",
        value_name = "FILE"
    )]
    pub topology: PathBuf,
    /// Where to write the kubeconfig (a temporary directory when absent).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Link to a moto server (or AWS-compatible endpoint) so EC2 and network-ACL faults have
    /// effects; defaults to AWS_ENDPOINT_URL when that is set.
    #[arg(long, value_name = "URL")]
    pub aws_endpoint: Option<String>,
    /// Authorize every request by RBAC, as `rbac: enforce` in the topology does; the
    /// kubeconfig written stays all-powerful (system:masters).
    #[arg(long)]
    pub enforce_rbac: bool,
    /// Also write `kubeconfig-NAMESPACE-NAME` authenticating as this ServiceAccount by a bearer
    /// token (the account is created when missing); repeatable.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = parse_service_account)]
    pub service_account: Vec<(String, String)>,
    /// Make the API server hostile, seeded by this number: 10% of resource requests answered
    /// 500/503/504, 5% throttled with 429 and Retry-After, watches closed after 3-8 s. Replaces
    /// the topology's `hostile:` block.
    #[arg(long, value_name = "SEED", num_args = 0..=1, default_missing_value = "1")]
    pub hostile: Option<u64>,
}

/// `NAMESPACE/NAME` of `--service-account`.
fn parse_service_account(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(format!(
            "expected NAMESPACE/NAME, found `{text}` (hint: --service-account steadfast/steadfast)"
        )),
    }
}

/// How to reach the cluster, for commands that touch it.
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterFlags {
    /// Kubeconfig file; KUBECONFIG or the in-cluster service account otherwise.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", hide_env_values = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Arguments of `run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The experiment.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where reports go: a directory (a directory per run is created inside) or
    /// s3://bucket/prefix (<prefix>/<experiment>/<timestamp>-<run-id>/ plus an index).
    #[arg(
        long,
        env = "STEADFAST_REPORTS_DIR",
        default_value = "reports",
        value_name = "DIR|S3_URL"
    )]
    pub report_dir: PathBuf,
    /// The write-ahead journal; see `steadfast rollback`.
    #[arg(long, env = "STEADFAST_JOURNAL", value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Seed for every random choice (overrides spec.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Apply undo records a previous run left pending (in the local journal or the cluster's)
    /// before starting.
    #[arg(long)]
    pub recover_first: bool,
    /// Keep the journal only on local disk, not also in the ConfigMap steadfast-journal of the
    /// state namespace.
    #[arg(long)]
    pub no_cluster_journal: bool,
    /// How long to keep retrying an undo record that fails (jittered exponential backoff)
    /// before leaving it pending, e.g. `5m`.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub undo_deadline: humantime::Duration,
    /// Push the run's metrics (verdict, availability, outages, recovery) to this Pushgateway.
    #[arg(
        long,
        env = "STEADFAST_PUSHGATEWAY_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub pushgateway: Option<String>,
    /// Write the run's metrics in Prometheus text format to this file (in a directory:
    /// steadfast-<experiment>.prom), for node_exporter's textfile collector.
    #[arg(long, env = "STEADFAST_METRICS_TEXTFILE", value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,
    /// How often a run in progress pushes its live metrics (fault windows, phase, availability)
    /// to the --pushgateway.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub live_metrics_interval: humantime::Duration,
    /// Serve the run's live metrics on /metrics at this address while it goes, e.g.
    /// 0.0.0.0:9465, for a Prometheus that scrapes the runner directly.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Server-side encryption of reports uploaded to an s3:// --report-dir.
    #[arg(long, value_enum, default_value_t = ReportSse::Aes256, env = "STEADFAST_REPORT_SSE")]
    pub report_sse: ReportSse,
    /// Region of an s3:// --report-dir's bucket (default: the environment's).
    #[arg(long, env = "STEADFAST_REPORT_REGION", value_name = "REGION")]
    pub report_region: Option<String>,
    /// Output format: `json` prints report.json's content on stdout and the summary on stderr.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// What `schedule` does with a fire while a run is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverlapPolicy {
    /// Drop the fire (counted in steadfast_schedule_fires_skipped_total).
    Skip,
    /// Run it when the current run ends (up to --queue-limit waiting fires).
    Queue,
}

/// Arguments of `schedule`.
#[derive(Debug, Args, Clone)]
pub struct ScheduleArgs {
    /// Directory of experiment files; those with spec.schedule are fired. Any invalid file
    /// stops the scheduler from starting.
    #[arg(long, value_name = "DIR")]
    pub experiments: PathBuf,
    /// A fire while a run is in progress: skip it or queue it.
    #[arg(long, value_enum, default_value_t = OverlapPolicy::Skip)]
    pub overlap: OverlapPolicy,
    /// Most fires waiting with --overlap queue; more are skipped.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub queue_limit: usize,
    /// Largest random delay added to each fire, uniform in [0, jitter), for experiments whose
    /// spec.schedule.jitter is unset, e.g. `2m`.
    #[arg(long, value_name = "DURATION")]
    pub jitter: Option<humantime::Duration>,
    /// Seed of the jitter (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Address of /healthz and /metrics.
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Fire every experiment once at start, then follow the schedules.
    #[arg(long)]
    pub fire_on_start: bool,
    /// Where reports go: a directory per run is created inside.
    #[arg(
        long,
        env = "STEADFAST_REPORTS_DIR",
        default_value = "reports",
        value_name = "DIR"
    )]
    pub report_dir: PathBuf,
    /// The write-ahead journal the runs share; `steadfast rollback` replays it after a run
    /// that did not roll back.
    #[arg(long, env = "STEADFAST_JOURNAL", value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Arguments of `rollback`.
#[derive(Debug, Args, Clone)]
pub struct RollbackArgs {
    /// The journal to replay (default: the local journal).
    #[arg(long, env = "STEADFAST_JOURNAL", value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Also heal network ACL partitions steadfast left in this region, from the tags on its
    /// ACLs, for when the journal was lost.
    #[arg(long, value_name = "REGION")]
    pub sweep_region: Option<String>,
    /// Also apply what the cluster's copy of the journal (ConfigMap steadfast-journal of the
    /// state namespace) holds pending, e.g. the undo of a run from a machine that is gone.
    #[arg(long, conflicts_with = "no_cluster_journal")]
    pub from_cluster: bool,
    /// Do not read or update the cluster's copy of the journal.
    #[arg(long)]
    pub no_cluster_journal: bool,
    /// How long to keep retrying an undo record that fails (jittered exponential backoff)
    /// before leaving it pending, e.g. `5m`.
    #[arg(long, default_value = "2m", value_name = "DURATION")]
    pub undo_deadline: humantime::Duration,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Arguments of `demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// The experiment to run against the sandbox.
    #[arg(long, default_value = "experiments/demo.yaml", value_name = "FILE")]
    pub experiment: PathBuf,
    /// The sandbox topology.
    #[arg(
        long,
        default_value = "experiments/sandbox/topology.yaml",
        value_name = "FILE"
    )]
    pub topology: PathBuf,
    /// Where reports go.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub report_dir: PathBuf,
    /// Push the run's metrics to this Pushgateway, as `run --pushgateway` does.
    #[arg(
        long,
        env = "STEADFAST_PUSHGATEWAY_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub pushgateway: Option<String>,
    /// Write the run's metrics in Prometheus text format here, as `run --metrics-textfile` does.
    #[arg(long, value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,
    /// How often the run pushes its live metrics, as `run --live-metrics-interval` does.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub live_metrics_interval: humantime::Duration,
    /// Serve the run's live metrics here, as `run --metrics-listen` does.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Arguments of `halt`.
#[derive(Debug, Args, Clone)]
pub struct HaltArgs {
    /// Why chaos is halted; every refused or aborted run shows it.
    #[arg(long, default_value = "halted by an operator")]
    pub reason: String,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Arguments of `probe`.
#[derive(Debug, Args, Clone)]
pub struct ProbeArgs {
    /// The experiment whose steady-state probes run.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// How long to probe, e.g. `30s` or `2m`.
    #[arg(long = "for", default_value = "10s", value_name = "DURATION")]
    pub duration: humantime::Duration,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Arguments of `plan`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// The experiment.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Seed for the random choices (overrides spec.seed), to preview exactly what `run --seed`
    /// will choose.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Arguments of `advise`.
#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// Namespace to read; the kubeconfig's namespace when neither this nor -A is given.
    #[arg(
        short = 'n',
        long,
        value_name = "NAME",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Read every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = AdviseFormat::Text)]
    pub output: AdviseFormat,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = crate::advise::Severity::Error)]
    pub fail_on: crate::advise::Severity,
    /// Do not read Auto Scaling groups even when AWS credentials are present.
    #[arg(long)]
    pub no_aws: bool,
    /// How to reach the cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// Formats `advise` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AdviseFormat {
    /// A table for people.
    Text,
    /// For machines.
    Json,
    /// A Markdown table for pull requests and wikis.
    Md,
}

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Namespace whose Services get starter experiments.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub namespace: String,
    /// Only this Service.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Directory the experiments are written to (created if missing).
    #[arg(long, value_name = "DIR", default_value = "steadfast-experiments")]
    pub out: PathBuf,
    /// Length of each experiment's fault phase (steady-state checks come on top).
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub duration: humantime::Duration,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
    /// How to reach the cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}
