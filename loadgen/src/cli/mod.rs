//! The command line (binary only): clap definitions of every subcommand, the dispatch to one
//! module per subcommand, and the exit status. Exit codes: 0 done, 1 a threshold or check
//! failed, 2 could not run.

mod attack;
mod baseline;
mod check;
mod compare;
mod event_log;
mod events;
pub mod log_format;
mod merge;
mod report;
mod restore;
mod run;
mod signal;
mod validate;
mod watch;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// How a command ended, mapped to the process exit code by `main` (an error is exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done, every threshold held (exit 0).
    Done,
    /// Done, but a threshold or check failed (exit 1).
    ChecksFailed,
    /// `check`: the runs cannot be compared (exit 2), the cause already printed.
    NotComparable,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Done => std::process::ExitCode::SUCCESS,
            ExitStatus::ChecksFailed => std::process::ExitCode::from(1),
            ExitStatus::NotComparable => std::process::ExitCode::from(2),
        }
    }
}

/// Examples shown under `loadgen --help`: one per subcommand (the CLI contract of ARCHITECTURE.md).
const EXAMPLES: &str = "\
Examples:
  loadgen run scenarios/td4.toml
  loadgen run scenarios/td4.toml --time-scale 0.1 --steps 'A/*' --prometheus managed --out /tmp/td4
  loadgen run scenarios/td4.toml --live --metrics-addr 127.0.0.1:9464 --live-linger 10m
  loadgen attack http://127.0.0.1:8080/api/clicks --rate 200 --duration 10s --method POST \\
      --header 'content-type: application/json' --body '{\"site\":\"demo\",\"url\":\"/p/{seq}\"}' --json
  loadgen attack https://localhost:8443/ --rate 100 --duration 10s --cacert ca.pem --http2
  loadgen attack http://127.0.0.1:8080/api/clicks --rate 20000 --duration 10s --shard 1/2 \\
      --start-at 2026-12-01T12:00:00Z --json > shard-1.json
  loadgen merge shard-0.json shard-1.json --out step.json
  loadgen validate scenarios/td4.toml --json
  loadgen report reports/example-td4/run.json --out /tmp/report
  loadgen check reports/ci-20261201T120000Z/run.json --baseline scenarios/ci.baseline.json --tolerance 10%
  loadgen baseline reports/ci-20261201T120000Z/run.json --out scenarios/ci.baseline.json
  loadgen compare base/scenarios/ci.toml scenarios/ci.toml --out capacity
  kubectl logs job/loadgen -n loadgen | loadgen report --from-log - --out ./td4-report
  loadgen restore k8s/loadgen/scenarios/td4-k8s.toml

Exit codes: 0 done, every step valid and every threshold held; 1 done but a threshold failed
or could not be evaluated, a step was invalid or its target failed, a search ran out of
budget, the run was interrupted, or (check) a capacity regressed (the reasons are listed on
stderr); 2 could not run (bad input, unreachable target, runs not comparable, ...), with a
one-line cause on stderr. A second Ctrl-C exits at once with 130.";

/// Open-model HTTP load generator and capacity reporter.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How stderr logs: `text` for people, or `json`, one object per line with stable keys
    /// (time, level, message, step, …) and the campaign's events, for a log pipeline
    /// (docs/logs.md). Tables and files on stdout are the same either way.
    #[arg(
        long,
        global = true,
        env = "LOADGEN_LOG_FORMAT",
        default_value = "text",
        value_name = "text|json"
    )]
    pub log_format: loadgen_logline::LogFormat,
}

// Parsed once per process: the size of its largest variant (`attack`'s many flags) costs
// nothing, and boxing it would only add noise to the dispatch.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a campaign scenario against real replicas and write run.json, steps.csv, report.html.
    ///
    /// Example: loadgen run scenarios/td4.toml --time-scale 0.1 --steps 'A/*'
    Run(RunArgs),
    /// One ad-hoc constant-rate step against a URL.
    ///
    /// Example: loadgen attack http://127.0.0.1:8080/api/clicks --rate 200 --duration 10s
    ///   --method POST --header 'content-type: application/json'
    ///   --body '{"site":"demo","url":"/p/{seq}"}'
    Attack(AttackArgs),
    /// Merge the results of a step's shards into one exact step.
    ///
    /// Histograms added, counts summed, timelines aligned; the step is invalid when a shard is
    /// invalid, late or missing (each reason kept).
    ///
    /// Example: loadgen merge shard-0.json shard-1.json shard-2.json --out step.json
    Merge(MergeArgs),
    /// Parse and expand a scenario and print its plan.
    ///
    /// Example: loadgen validate scenarios/td4.toml --json
    Validate(ValidateArgs),
    /// Re-render tables, steps.csv and report.html from a saved run.json.
    ///
    /// Example: loadgen report reports/td4-20261127T150000Z/run.json --out /tmp/r
    Report(ReportArgs),
    /// Put back the replicas and CPU a killed run left changed on a kind = "kubernetes"
    /// target (kept in the Deployment's loadgen.io/original annotation).
    ///
    /// Example: loadgen restore k8s/loadgen/scenarios/td4-k8s.toml
    Restore(RestoreArgs),
    /// Compare a run's capacities with a baseline: exit 0 pass, 1 regression, 2 not comparable.
    ///
    /// Example: loadgen check reports/ci-20261201T120000Z/run.json
    ///   --baseline scenarios/ci.baseline.json --tolerance 10%
    Check(CheckArgs),
    /// Keep what `loadgen check` needs of a run, in a file small enough to commit.
    ///
    /// Example: loadgen baseline reports/ci-20261201T120000Z/run.json --out scenarios/ci.baseline.json
    Baseline(BaselineArgs),
    /// Same-machine A/B: two services' capacities, probes interleaved; exit 0 no regression,
    /// 1 regression, 2 could not compare.
    ///
    /// Example: loadgen compare base/scenarios/ci.toml scenarios/ci.toml --out capacity
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The base's scenario: a capacity search (`campaign.search`) starting the base service.
    pub base: PathBuf,
    /// The head's scenario: the same campaigns, SLO and request; only the service differs.
    pub head: PathBuf,
    /// Output directory (default: reports/compare).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Searches of each configuration per side (the second and later start near the knee).
    #[arg(long, default_value_t = 2)]
    pub repeats: u32,
    /// A capacity this much lower (and shown to be by its interval) is a regression.
    #[arg(long, default_value = "5%")]
    pub tolerance: String,
    /// Multiply every duration by F (rates unchanged).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The run to check: a run.json written by `loadgen run`.
    pub run_json: PathBuf,
    /// What to compare against: a file from `loadgen baseline`, or another run.json. When it
    /// does not exist yet, the check passes and writes the run's baseline.json beside it, the
    /// file to commit there.
    #[arg(long)]
    pub baseline: PathBuf,
    /// The largest capacity drop that is not a regression, e.g. 10% (or 0.1).
    #[arg(long, default_value = "10%")]
    pub tolerance: String,
    /// Compare even when the scenario file, the machine class (CPUs, memory bucket, cgroup
    /// mode) or the time scale differ; the verdict names what differed.
    #[arg(long)]
    pub allow_different: bool,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// A run.json written by `loadgen run`.
    pub run_json: PathBuf,
    /// Where to write the baseline (JSON).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The scenario of the run that was killed (its [target] names the Deployment).
    pub scenario: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Output directory (default: reports/<scenario>-<utc>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Multiply every duration by F for a quick replay (rates unchanged), e.g. 0.1.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Run only steps whose `campaign/name` matches (comma-separated globs, `*` wildcard).
    #[arg(long)]
    pub steps: Option<String>,
    /// Cross-check with Prometheus: a URL, or `managed` to start a local one.
    #[arg(long)]
    pub prometheus: Option<String>,
    /// Also print run.json on stdout between marker lines at the end (for a Kubernetes Job,
    /// whose files vanish with its pod: `kubectl logs … | loadgen report --from-log -`).
    #[arg(long, env = "LOADGEN_PRINT_RUN_JSON")]
    pub print_run_json: bool,
    #[command(flatten)]
    pub watch: watch::WatchArgs,
}

#[derive(Debug, Args)]
pub struct AttackArgs {
    /// Target URL (loopback only), e.g. http://127.0.0.1:8080/api/clicks or
    /// https://localhost:8443/ (TLS, its host the server name). With --endpoint it gives only
    /// the path, the Host header and the TLS server name.
    pub url: String,
    /// Send the load to this base URL (repeatable, e.g. one per replica) instead of the
    /// target URL, which then names the Host as a proxy in front of them keeps it. Each is
    /// checked like the target URL (loopback only).
    #[arg(long = "endpoint", value_name = "URL")]
    pub endpoints: Vec<String>,
    /// How requests are spread over several --endpoint: round robin per request (an L7
    /// proxy), or per new connection with any idle one reused (kube-proxy).
    #[arg(
        long,
        default_value = "request",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(["request", "connection"]),
            // Only the two possible values get here: both parse.
            |s| s.parse::<loadgen_engine::Balance>().unwrap_or_default(),
        )
    )]
    pub balance: loadgen_engine::Balance,
    /// Requests per second (arrival rate, independent of responses).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: f64,
    /// How long to offer load, e.g. 10s, 1m30s.
    #[arg(long)]
    pub duration: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Extra header `Name: value` (repeatable).
    #[arg(long = "header", value_name = "K:V")]
    pub headers: Vec<String>,
    /// Request body, or @FILE to read it from a file; `{seq}` and `{rand}` are expanded.
    #[arg(long)]
    pub body: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Cap on requests in flight; due requests beyond it are counted as dropped.
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Use exactly N keep-alive connections (a fixed pool) instead of the default policy:
    /// opened on demand up to the in-flight cap, idle ones closed after 1 s.
    #[arg(long, conflicts_with = "max_connections")]
    pub connections: Option<usize>,
    /// Cap the default policy's connections at N (requests beyond wait for one, in their
    /// latency): spares a target a connection storm, at the price of holding load back.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// The engine's I/O backend: `auto` takes io_uring where the kernel allows it (plain
    /// HTTP/1.1 only) and falls back to epoll where it is refused; the result says which ran
    /// and why (`generator.io_backend`, `io_fallback_reason`).
    #[arg(long, default_value = "auto")]
    pub io: loadgen_engine::io::IoMode,
    /// Ramp: start at this rate and reach --rate at the end of --duration.
    #[arg(long, allow_negative_numbers = true)]
    pub ramp_from: Option<f64>,
    /// Poisson arrivals (seeded) instead of evenly spaced ones.
    #[arg(long)]
    pub poisson: bool,
    /// Seed of the Poisson arrivals (every shard of a step must use the same one).
    #[arg(long, default_value_t = 1, requires = "poisson")]
    pub seed: u64,
    /// Send only shard K of N of the schedule: the requests whose index i has i mod N = K
    /// (`{seq}` stays the global index); needs --start-at or --start-at-file when N > 1.
    /// `loadgen merge` adds the N results into one step.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Start the schedule at this instant (RFC 3339 or unix ms), the same for every shard; a
    /// shard that starts later records by how much (and is invalid beyond the lag bound).
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// Wait (up to --start-wait) until FILE holds the start time, then start then: a generator
    /// pod reads it from a downward-API file of its annotation, set once every shard runs.
    #[arg(long, value_name = "FILE", conflicts_with = "start_at")]
    pub start_at_file: Option<PathBuf>,
    /// How long --start-at-file may stay empty before this shard gives up (exit 2): a pod whose
    /// coordinator died must not wait for an hour.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration, requires = "start_at_file")]
    pub start_wait: std::time::Duration,
    /// An https:// URL: trust only the CA certificates (PEM) in FILE instead of the system's.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// An https:// URL: do not verify the server's certificate (recorded in the result and
    /// the summary: such a step proves nothing about who answered).
    #[arg(long)]
    pub insecure: bool,
    /// An https:// URL: present this client certificate chain (PEM) for mTLS; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// An https:// URL: resume TLS sessions across the step's connections (rustls's session
    /// cache), as a browser or a keep-alive client pool does; `off` makes every handshake full.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub tls_resume: String,
    /// Speak HTTP/2: ALPN h2 over https://, prior knowledge (h2c) over http://; many requests
    /// at once per connection, each a stream.
    #[arg(long)]
    pub http2: bool,
    /// With --http2: streams one connection carries at once; a new connection is opened only
    /// when every one has this many (the pool's caps then count streams, not connections).
    #[arg(long, default_value_t = 100, requires = "http2")]
    pub max_streams: usize,
    /// Print the StepResult as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Pin this generator to CPU K before it starts (as `taskset -c K`), e.g. one shard per CPU.
    #[arg(long, value_name = "K")]
    pub cpu: Option<usize>,
    /// Also print the result as one marked line on stdout (`loadgen-shard-result {…}`), for a
    /// generator pod whose log is all that is left of it. The exit code is then 0 for an
    /// invalid step too: its validity is in the result.
    #[arg(long, env = "LOADGEN_LOG_RESULT")]
    pub log_result: bool,
    #[command(flatten)]
    pub watch: watch::WatchArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' results (`loadgen attack --shard K/N --json` output, or a log with its
    /// marked result line), one file per shard.
    #[arg(required = true, value_name = "SHARD.json")]
    pub shards: Vec<PathBuf>,
    /// Write the merged StepResult here (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run.json written by `loadgen run` (or, with --from-log, omitted).
    #[arg(required_unless_present = "from_log")]
    pub run_json: Option<PathBuf>,
    /// Read run.json from a log (`kubectl logs` output, `-` for stdin): the part between
    /// the marker lines `loadgen run --print-run-json` writes.
    #[arg(long, value_name = "FILE|-", conflicts_with = "run_json")]
    pub from_log: Option<PathBuf>,
    /// Where to write steps.csv and report.html (default: beside run.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add a comparison with this baseline (a `loadgen baseline` file or a run.json).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// The tolerance of the comparison, as for `loadgen check`.
    #[arg(long, default_value = "10%", requires = "baseline")]
    pub tolerance: String,
}

/// Exit 1 with the reasons on stderr when a finished run has any (an invalid or failed step, a
/// broken or unevaluated threshold, an interruption); exit 0 otherwise.
fn exit_status_of(result: &loadgen_model::result::CampaignResult) -> ExitStatus {
    let reasons = result.exit_reasons();
    if reasons.is_empty() {
        return ExitStatus::Done;
    }
    if log_format::exit_reasons(&reasons) {
        return ExitStatus::ChecksFailed;
    }
    /// Reasons listed before the rest is counted, so a 60-step run stays readable.
    const SHOWN: usize = 8;
    eprintln!("exit 1 because:");
    for r in reasons.iter().take(SHOWN) {
        eprintln!("  - {r}");
    }
    if reasons.len() > SHOWN {
        eprintln!(
            "  … and {} more (see the findings in the report)",
            reasons.len() - SHOWN
        );
    }
    ExitStatus::ChecksFailed
}

/// Runs the parsed command. `Err` means the command could not run (exit 2).
pub fn execute(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Run(a) => run::execute(a),
        Command::Attack(a) => attack::execute(a),
        Command::Merge(a) => merge::execute(a),
        Command::Validate(a) => validate::execute(a),
        Command::Report(a) => report::execute(a),
        Command::Restore(a) => restore::execute(a),
        Command::Check(a) => check::execute(a),
        Command::Baseline(a) => baseline::execute(a),
        Command::Compare(a) => compare::execute(a),
    }
}
