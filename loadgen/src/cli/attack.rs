//! `loadgen attack URL --rate R --duration D …`: one ad-hoc open-model step. Checks the input
//! (any mistake is a one-line error, exit 2), runs [`loadgen_engine::run`] with a live progress
//! line on a terminal, and prints a summary (stderr) or, with `--json`, the StepResult (stdout).
//!
//! Exit codes: 0 the step ran to its end and is valid; 1 it ran but is invalid (the generator
//! could not keep the schedule) or was interrupted by Ctrl-C — the result is printed either way;
//! 2 it could not run. Failed requests alone do not change the exit code: they are measurements
//! of the target, reported in the result.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::cli::watch::Watchers;
use crate::cli::{signal, AttackArgs, ExitStatus};
use loadgen::campaign::{assemble, Event, Events, PlannedStep};
use loadgen_engine::load::{Arrival, Load, Stage};
use loadgen_engine::pool::GROW_AFTER;
use loadgen_engine::progress::{self, LiveStats};
use loadgen_engine::target::{self, Reach};
use loadgen_engine::template::{self, RequestTemplate};
use loadgen_engine::tls::TlsSpec;
use loadgen_engine::{self as attack, AttackError, AttackSpec, Limits};
use loadgen_model::result::RunStatus;
use loadgen_model::shard::{self, Shard};
use loadgen_model::step_id::StepId;
use loadgen_report::step_summary;

/// How far ahead `--start-at` may be: a bound on the wait before the first request.
const MAX_START_AHEAD: Duration = Duration::from_secs(3600);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Turns the arguments into an attack spec; every error is a one-line cause.
pub fn spec_from_args(a: &AttackArgs) -> anyhow::Result<AttackSpec> {
    let (base, path) = target::split_url(&a.url).map_err(|e| AttackError::from_url(&a.url, e))?;
    let (reach, endpoints) = endpoints_from_args(a, &base)?;
    if !(a.rate.is_finite() && a.rate > 0.0) {
        anyhow::bail!("--rate must be a number > 0 (got {})", a.rate);
    }
    let duration = humantime::parse_duration(&a.duration)
        .with_context(|| format!("--duration {:?}", a.duration))?;
    if duration.is_zero() {
        anyhow::bail!("--duration must be > 0");
    }
    let timeout = humantime::parse_duration(&a.timeout)
        .with_context(|| format!("--timeout {:?}", a.timeout))?;
    let from = match a.ramp_from {
        Some(r) if !(r.is_finite() && r >= 0.0) => {
            anyhow::bail!("--ramp-from must be a number >= 0 (got {r})")
        }
        Some(r) => r,
        None => a.rate,
    };
    if a.max_streams == 0 {
        anyhow::bail!("--max-streams must be >= 1");
    }
    let limits = Limits {
        timeout,
        max_in_flight: a.max_in_flight,
        connections: a.connections,
        max_connections: a.max_connections,
        io: a.io,
    };
    limits
        .check()
        .map_err(|e| anyhow::anyhow!("--{} must be {}", e.setting.replace('_', "-"), e.expected))?;
    let request = request_from_args(a, path)?;
    let tls = tls_from_args(a, &base)?;
    let shard = a.shard.as_deref().map(Shard::parse).transpose()?;
    let start_at = start_at_from_args(a)?;
    if let (Some(s), None) = (shard, start_at) {
        // Without one start instant each shard would count its schedule from its own start,
        // and the union would not be the one schedule the merge reads it as.
        if s.count > 1 {
            anyhow::bail!(
                "--shard {}/{} needs --start-at TIME (or --start-at-file FILE), the same for every shard",
                s.index,
                s.count
            );
        }
    }
    Ok(AttackSpec {
        url: base.as_url(),
        endpoints,
        balance: a.balance,
        tls,
        http2: a.http2.then_some(attack::Http2 {
            max_streams: a.max_streams,
        }),
        reach,
        load: Load {
            stages: vec![Stage {
                duration,
                from_rps: from,
                to_rps: a.rate,
            }],
            arrival: if a.poisson {
                Arrival::Poisson { seed: a.seed }
            } else {
                Arrival::Uniform
            },
        },
        request,
        limits,
        shard,
        start_at,
    })
}

/// Where load may go and the endpoints, each resolved and refused (unless
/// LOADGEN_ALLOW_REMOTE=1) when not loopback, before anything else happens: the endpoints when
/// given (the URL then only names the Host), else the URL.
fn endpoints_from_args(
    a: &AttackArgs,
    base: &target::BaseUrl,
) -> Result<(Reach, Vec<String>), AttackError> {
    let reach = Reach::from_opt_in(false);
    if a.endpoints.is_empty() {
        attack::resolve_target_with(&base.as_url(), reach)?;
    }
    let endpoints = a
        .endpoints
        .iter()
        .map(|e| {
            attack::resolve_target_with(e, reach)?;
            Ok(target::BaseUrl::parse(e.trim_end_matches('/'))
                .map_err(|err| AttackError::from_url(e, err))?
                .as_url())
        })
        .collect::<Result<Vec<_>, AttackError>>()?;
    Ok((reach, endpoints))
}

/// The TLS settings, every file read and checked now: a CA that does not parse is bad input,
/// not a failure per request.
fn tls_from_args(a: &AttackArgs, base: &target::BaseUrl) -> anyhow::Result<TlsSpec> {
    let tls = TlsSpec {
        cacert: a.cacert.clone(),
        insecure: a.insecure,
        cert: a.cert.clone(),
        key: a.key.clone(),
        resume: a.tls_resume == "on",
    };
    attack::tls_client(base, &tls, a.http2).map_err(|e| match e.setting() {
        "url" => anyhow::anyhow!("{e}"),
        flag => anyhow::anyhow!("--{flag}: {e}"),
    })?;
    Ok(tls)
}

fn start_at_from_args(a: &AttackArgs) -> anyhow::Result<Option<std::time::SystemTime>> {
    if let Some(path) = &a.start_at_file {
        let wait = a.start_wait.min(MAX_START_AHEAD);
        let at = shard::wait_for_start_file(path, wait).context("--start-at-file")?;
        return Ok(Some(at));
    }
    let Some(s) = &a.start_at else {
        return Ok(None);
    };
    let at = shard::parse_start_at(s).context("--start-at")?;
    if at
        .duration_since(std::time::SystemTime::now())
        .is_ok_and(|ahead| ahead > MAX_START_AHEAD)
    {
        anyhow::bail!(
            "--start-at {s:?} is more than {} ahead",
            humantime::format_duration(MAX_START_AHEAD)
        );
    }
    Ok(Some(at))
}

fn request_from_args(a: &AttackArgs, path: String) -> anyhow::Result<RequestTemplate> {
    let method = hyper::Method::from_bytes(a.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| anyhow::anyhow!("--method {:?} is not an HTTP method", a.method))?;
    let headers = a
        .headers
        .iter()
        .map(|h| template::parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = match &a.body {
        Some(b) => template::load_body(b, std::path::Path::new("."))?,
        None => bytes::Bytes::new(),
    };
    let request = RequestTemplate {
        method,
        path,
        headers,
        body,
    };
    // Compile once here so a bad header or path is reported as bad input, not mid-run.
    request.compile("check")?;
    Ok(request)
}

/// Runs `loadgen attack`.
pub fn execute(args: AttackArgs) -> anyhow::Result<ExitStatus> {
    let spec = spec_from_args(&args)?;
    if let Some(cpu) = args.cpu {
        // Before the runtime and the engine thread exist, so they inherit it.
        attack::priority::pin_to_cpu(cpu).with_context(|| format!("--cpu {cpu}"))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let watchers = rt.block_on(Watchers::start(&args.watch))?;
    let json_log = super::log_format::json();
    // A JSON log is one more sink of the attack's events (its progress thinned to 1/s there).
    let events = watchers.events(if json_log {
        super::event_log::json_lines()
    } else {
        Events::quiet()
    });
    let id = StepId::parse("attack");
    let stop = CancellationToken::new();
    let shown = Shown {
        bar: std::io::stderr().is_terminal() && !json_log,
        progress: json_log || watchers.wants_progress(),
    };
    let record = rt.block_on(async {
        let signals = tokio::spawn(signal::watch(
            stop.clone(),
            "interrupted: waiting for requests in flight, then printing what was measured",
        ));
        let result = watched(&spec, &events, &id, shown, &stop).await;
        signals.abort();
        result
    })?;
    let step = assemble::generator_result(&record, "attack");
    events.emit(Event::StepFinished {
        result: Box::new(step.clone()),
    });
    events.emit(Event::RunEnded {
        status: if step.interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Completed
        },
    });
    let json = serde_json::to_string(&step)?;
    if args.json {
        println!("{json}");
    } else if !json_log {
        // (A JSON log had the step_finished line from the event above.)
        eprint!("{}", step_summary::render(&step, &args.url, GROW_AFTER));
    }
    if args.log_result {
        println!("{}{json}", shard::RESULT_MARK);
        // A shard's validity is in its result, which the coordinator judges; an exit code of 1
        // would mark its index failed (the Job's backoff is per index, so its siblings run
        // on), and a pod that ends with a result is a measured shard, not a failed one.
        return Ok(ExitStatus::Done);
    }
    watchers.after_run(&rt, stop.is_cancelled());
    Ok(if step.valid && !step.interrupted {
        ExitStatus::Done
    } else {
        ExitStatus::ChecksFailed
    })
}

/// Who follows the attack while it runs: a spinner on the terminal, and progress events for
/// the watchers or a JSON log.
#[derive(Debug, Clone, Copy)]
struct Shown {
    bar: bool,
    progress: bool,
}

/// The attack as a one-step run told to `events`: announced, its progress (and the spinner),
/// its last reading.
async fn watched(
    spec: &AttackSpec,
    events: &Events,
    id: &StepId,
    shown: Shown,
    stop: &CancellationToken,
) -> Result<loadgen_engine::record::StepRecord, AttackError> {
    announce(events, spec, id);
    let live = LiveStats::with_detail();
    let bar = shown.bar.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let total = spec.load.duration();
    let ticker = (shown.bar || shown.progress).then(|| {
        let (bar, events, id, reader) = (bar.clone(), events.clone(), id.clone(), live.clone());
        let draw = move |snapshot: progress::LiveSnapshot| {
            if let Some(bar) = &bar {
                bar.set_message(progress::progress_line(&snapshot, total));
                bar.tick();
            }
            let (step, detail) = (id.clone(), reader.detail());
            events.emit(Event::Progress {
                step,
                live: snapshot,
                detail,
                total,
            });
        };
        tokio::spawn(progress::tick(live.clone(), PROGRESS_EVERY, draw))
    });
    let result = attack::run(spec, stop, Some(&live)).await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (last, detail) = (live.snapshot(), live.detail());
    events.emit(Event::AttackEnded {
        step: id.clone(),
        last,
        detail,
    });
    result
}

/// The ad-hoc attack as a run of one step, for the watchers.
fn announce(events: &Events, spec: &AttackSpec, id: &StepId) {
    let planned = PlannedStep {
        step: id.clone(),
        rate_rps: spec.load.peak_rate_rps(),
        duration: spec.load.duration(),
        replicas: spec.endpoints.len().max(1) as u32,
        cpu_limit_cores: None,
    };
    events.emit(Event::RunStarted {
        scenario: "attack".into(),
        out_dir: None,
        steps: vec![planned.clone()],
        searches: 0,
    });
    events.emit(Event::StepStarted {
        index: 0,
        total: 1,
        step: id.clone(),
        rate_rps: planned.rate_rps,
        duration: planned.duration,
        replicas: planned.replicas,
        cpu_limit_cores: None,
    });
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};
    use loadgen_engine::Balance;

    fn args(extra: &[&str]) -> AttackArgs {
        let base = [
            "loadgen",
            "attack",
            "http://shop.test:8080/api",
            "--rate",
            "10",
        ];
        let all = base.iter().chain(["--duration", "1s"].iter()).chain(extra);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Attack(a) => a,
            other => panic!("not an attack: {other:?}"),
        }
    }

    #[test]
    fn endpoints_carry_the_load_and_the_url_names_the_host() {
        let a = args(&[
            "--endpoint",
            "http://127.0.0.1:7001/",
            "--endpoint",
            "http://127.0.0.1:7002",
            "--balance",
            "connection",
        ]);
        let s = spec_from_args(&a).unwrap();
        assert_eq!(
            s.endpoints,
            ["http://127.0.0.1:7001", "http://127.0.0.1:7002"]
        );
        assert_eq!(s.balance, Balance::Connection);
        // Not loopback, but no load goes there: it is the Host header's authority.
        assert_eq!(s.url, "http://shop.test:8080");
        assert_eq!(s.request.path, "/api");
        let remote = args(&["--endpoint", "http://10.1.2.3:80"]);
        let e = spec_from_args(&remote).unwrap_err().to_string();
        assert!(e.contains("is not loopback"), "{e}");
        assert!(Cli::try_parse_from([
            "loadgen",
            "attack",
            "x",
            "--rate",
            "1",
            "--duration",
            "1s",
            "--balance",
            "hash"
        ])
        .is_err());
    }
}
