//! A step's shards as local processes: N `loadgen attack --shard K/N --start-at T --json`
//! children of this very binary, each optionally pinned to its own CPU, each writing its result
//! into the step's shard directory (kept beside run.json: measurements saved before they are
//! interpreted). A stop (Ctrl-C) is passed on as one SIGTERM, so every shard ends its schedule
//! and still writes what it measured; a shard that exits without a result, or outlives its
//! bound and is killed, is a missing shard of the merge, with why.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::args::attack_args;
use super::{GeneratorError, Sharded, START_LEAD};
use crate::campaign::merge::{merge, ShardInput};
use crate::deployer::process::{ChildProcess, Stopped};
use crate::plan::Generators;
use loadgen_engine::target::Reach;
use loadgen_engine::AttackSpec;
use loadgen_model::result::StepResult;
use loadgen_model::shard::Shard;

/// Time a shard may take past its schedule, its request timeout and its drain: process start
/// and exit on a loaded machine.
const EXIT_MARGIN: Duration = Duration::from_secs(10);

/// Runs `spec` as `generators.count` shard processes writing into `dir`, and merges them.
pub async fn run(
    spec: &AttackSpec,
    generators: Generators,
    dir: &Path,
    stop: &CancellationToken,
    on_start: super::OnStart,
) -> Result<Sharded, GeneratorError> {
    let exe = std::env::current_exe().map_err(GeneratorError::OwnBinary)?;
    std::fs::create_dir_all(dir).map_err(|source| GeneratorError::File {
        path: dir.to_path_buf(),
        source,
    })?;
    let start_at = SystemTime::now() + START_LEAD;
    let cpus = crate::machine::online_cpus().unwrap_or(1).max(1);
    let mut children = Vec::new();
    for k in 0..generators.count {
        let shard = Shard::new(k, generators.count)?;
        let pin = generators.pin.then_some(k % cpus);
        children.push(spawn(&exe, spec, shard, start_at, pin, dir)?);
    }
    super::announce(on_start, start_at);
    let bound = START_LEAD + spec.load.duration() + spec.limits.timeout + EXIT_MARGIN;
    let ended = wait_all(&mut children, bound, stop).await;
    let inputs: Vec<ShardInput> = ended
        .into_iter()
        .enumerate()
        .map(|(k, stopped)| input(k as u32, stopped, dir, bound))
        .collect();
    let step = merge(generators.count, &inputs)?;
    Ok(Sharded { step, start_at })
}

fn result_path(dir: &Path, k: u32) -> PathBuf {
    dir.join(format!("shard-{k}.json"))
}

/// Starts shard `k`: stdout (its JSON result) and stderr into files, in a process group of its
/// own so a terminal's Ctrl-C reaches it only as the one SIGTERM this runner passes on.
fn spawn(
    exe: &Path,
    spec: &AttackSpec,
    shard: Shard,
    start_at: SystemTime,
    pin: Option<u32>,
    dir: &Path,
) -> Result<ChildProcess, GeneratorError> {
    use std::os::unix::process::CommandExt as _;
    let k = shard.index;
    let file = |path: PathBuf| {
        std::fs::File::create(&path).map_err(|source| GeneratorError::File { path, source })
    };
    let mut cmd = Command::new(exe);
    cmd.args(attack_args(spec, Some(shard), Some(start_at))?)
        .stdin(Stdio::null())
        .stdout(file(result_path(dir, k))?)
        .stderr(file(dir.join(format!("shard-{k}.log")))?)
        .process_group(0);
    if let Some(cpu) = pin {
        cmd.args(["--cpu", &cpu.to_string()]);
    }
    if spec.reach == Reach::Remote {
        // The campaign's plan allowed it; the child reads the opt-in from its environment.
        cmd.env("LOADGEN_ALLOW_REMOTE", "1");
    }
    let child = cmd
        .spawn()
        .map_err(|source| GeneratorError::Spawn { shard, source })?;
    Ok(ChildProcess::new(child, format!("generator shard {shard}")))
}

/// Waits for every shard until `bound` has passed, passing a stop on as SIGTERM once.
async fn wait_all(
    children: &mut [ChildProcess],
    bound: Duration,
    stop: &CancellationToken,
) -> Vec<Stopped> {
    let deadline = tokio::time::Instant::now() + bound;
    {
        let all =
            futures_util::future::join_all(children.iter_mut().map(|c| c.wait_or_kill(bound)));
        tokio::select! {
            ended = all => return ended,
            () = stop.cancelled() => {}
        }
    }
    for c in children.iter() {
        c.terminate();
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    futures_util::future::join_all(children.iter_mut().map(|c| c.wait_or_kill(left))).await
}

/// Shard `k` as the merge takes it: its result, or why there is none.
fn input(k: u32, stopped: Stopped, dir: &Path, bound: Duration) -> ShardInput {
    let status = match stopped {
        Stopped::Exited(status) => status,
        Stopped::Killed | Stopped::Unreaped => {
            return ShardInput::Missing {
                index: k,
                why: format!(
                    "did not finish within {} and was killed",
                    humantime::format_duration(bound)
                ),
            }
        }
    };
    let text = std::fs::read_to_string(result_path(dir, k)).unwrap_or_default();
    match serde_json::from_str::<StepResult>(text.trim()) {
        Ok(step) => ShardInput::Result(Box::new(step)),
        Err(_) => {
            let log =
                std::fs::read_to_string(dir.join(format!("shard-{k}.log"))).unwrap_or_default();
            let last = log.lines().last().unwrap_or("").trim().to_string();
            let said = if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            };
            ShardInput::Missing {
                index: k,
                why: format!("exited ({status}) without a result{said}"),
            }
        }
    }
}
