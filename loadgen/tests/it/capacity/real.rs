//! With real processes: a search that finds a 1-core polymetrie's knee, and a check that
//! passes the same build and catches one burning twice the CPU per click.

use std::path::{Path, PathBuf};

use loadgen_judge::search::Ending;
use loadgen_model::result::CampaignResult;

use crate::common::{self, command, external};

// ---------------------------------------------------------------- real processes

fn ready() -> bool {
    external::polymetrie().is_some() && external::cgroups_usable()
}

/// A search of one 1-core replica at 5.5 ms per click, short probes so three runs fit in a test.
/// No repeats (`confirm = 0`): at 3-s probes the best passing rate sits so near the p99 bound
/// that a repeat of it can fail (a `.ci/run` saw 200 req/s pass at p99 < 500 ms, then fail at
/// 506 ms), and a disagreeing repeat rightly drops the capacity to the last rate whose every
/// probe passed — 100 req/s, where the doubled cost's capacity also lies, so the check could
/// not see it. Repeats and their spread are tested on pure inputs (`search::tests`,
/// `capacity::check`).
fn search_scenario(dir: &Path) -> PathBuf {
    let text = r#"name = "knee"
counter_site = "demo"
[target]
kind = "local"
[service]
cost = "5.5ms"
sites = ["demo"]
[request]
method = "POST"
path = "/api/clicks"
headers = { "content-type" = "application/json" }
body = '{"site":"demo","url":"/p/{seq}"}'
[defaults]
timeout = "2s"
warmup = "500ms"
pause = "0s"
[[campaign]]
name = "knee"
search = { from = 50, to = 800, precision = 0.1, step = "3s", confirm = 0, budget = "3m" }
slo = { counted_ratio = 0.99, p99_ms = 500 }
[campaign.matrix]
replicas = [1]
cpu_limit = [1]
"#;
    let path = dir.join("knee.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A `polymetrie` that burns `cost` per click whatever the scenario says: a slower build of
/// the service under an unchanged scenario, which is what a CI check is there to catch.
fn slower_polymetrie(dir: &Path, real: &Path, cost: &str) -> PathBuf {
    let path = dir.join("polymetrie-slower");
    let script = format!(
        "#!/bin/bash\nargs=()\nprev=\nfor a in \"$@\"; do\n  if [ \"$prev\" = --cost ]; then a={cost}; fi\n  \
         args+=(\"$a\")\n  prev=$a\ndone\nexec {} \"${{args[@]}}\"\n",
        real.display()
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run_search(scenario: &Path, out: &Path, polymetrie: &Path) -> CampaignResult {
    let o = command::loadgen()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .env("POLYMETRIE_BIN", polymetrie)
        .output()
        .unwrap();
    // The search's own log, so a failure below shows which probes ran and why they ended.
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    command::assert_exit(&o, 0);
    let text = std::fs::read_to_string(out.join("run.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

// Three searches of about 30 s each; every search's log is printed above its assertions.
#[test]
fn a_search_finds_the_knee_and_the_check_catches_a_doubled_cost() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let real = external::polymetrie_lookup().unwrap();
    let dir = common::tempdir("capacity-real");
    let d = dir.path();
    let scenario = search_scenario(d);
    let base = run_search(&scenario, &d.join("a"), &real);
    let cap = &base.capacities[0];
    let (pass, fail) = (cap.capacity_rps.unwrap(), cap.failed_rps.unwrap());
    eprintln!("5.5 ms: capacity {pass} req/s, fails at {fail} req/s");
    // ~1/5.5 ms = 180 req/s per core; the interval must overlap 150–220.
    assert!(pass <= 220.0 && fail >= 150.0, "{cap:?}");
    assert_eq!(cap.ending, Ending::Converged);
    // Every probe is an ordinary step of run.json, named after its configuration and rate.
    assert_eq!(base.steps.len(), cap.probes as usize);
    assert_eq!(base.steps[0].name, "search-r1-cpu1-00-50rps");
    assert!(d.join("a/report.html").exists());

    let baseline = d.join("baseline.json");
    let made = command::loadgen_output([
        "baseline".as_ref(),
        d.join("a/run.json").as_os_str(),
        "--out".as_ref(),
        baseline.as_os_str(),
    ]);
    command::assert_exit(&made, 0);
    // Runs of one scenario on a machine shared with other work: 25 % keeps their noise from
    // failing the same cost, while a doubled cost halves the capacity.
    let check_run = |run: &Path| {
        command::loadgen()
            .arg("check")
            .arg(run.join("run.json"))
            .arg("--baseline")
            .arg(&baseline)
            .args(["--tolerance", "25%"])
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap()
    };
    run_search(&scenario, &d.join("b"), &real);
    let same = check_run(&d.join("b"));
    let text = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{text}");

    run_search(
        &scenario,
        &d.join("c"),
        &slower_polymetrie(d, &real, "11ms"),
    );
    let slower = check_run(&d.join("c"));
    let text = String::from_utf8_lossy(&slower.stdout);
    assert_eq!(slower.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REGRESSION") && text.contains("knee/r1-cpu1"),
        "{text}"
    );
}
