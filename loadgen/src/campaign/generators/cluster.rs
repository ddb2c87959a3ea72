//! A step's shards on a cluster: one Indexed Job per step in the target's namespace (its body,
//! pod wait, start time, log gathering and deletion are [`crate::deployer::kubernetes::job`]'s),
//! run with the coordinator's own image, each pod's marked log line read back as its shard's
//! result and merged into the step. Only the coordinator talks to the API.

use kube::api::Api;
use kube::Client;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::args::attack_args;
use super::{GeneratorError, Sharded};
use crate::campaign::merge::{merge, ShardInput};
use crate::deployer::kubernetes::job::{self, GeneratorJob, ShardPod};
use crate::plan::{Generators, KubernetesTarget};
use loadgen_engine::AttackSpec;
use loadgen_model::result::StepResult;
use loadgen_model::step_id::StepId;

pub use crate::deployer::kubernetes::job::{IMAGE_ENV, POD_NAME_ENV};
/// Time a shard pod may take past its schedule, timeout and drain: exit and log flush.
const EXIT_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `spec` as `generators.count` pods of one Indexed Job, and merges them.
pub async fn run(
    spec: &AttackSpec,
    generators: Generators,
    target: &KubernetesTarget,
    id: &StepId,
    client: Client,
    stop: &CancellationToken,
    on_start: super::OnStart,
) -> Result<Sharded, GeneratorError> {
    let ns = &target.namespace;
    let bound = spec.load.duration() + spec.limits.timeout + EXIT_MARGIN;
    let job = GeneratorJob {
        namespace: ns.clone(),
        name: job_name(id, run_token()),
        deployment: target.deployment.clone(),
        run_bound: bound,
        image: job::own_image(&client, ns)
            .await
            .map_err(|e| GeneratorError::Image(Box::new(e)))?,
        count: generators.count,
        args: attack_args(spec, None, None)?,
    };
    let jobs = Api::namespaced(client.clone(), ns);
    let pods = Api::namespaced(client, ns);
    let (outcomes, start_at) = job::run(&jobs, &pods, &job, bound, stop, on_start)
        .await
        .map_err(|source| GeneratorError::Job {
            job: job.name.clone(),
            source: Box::new(source),
        })?;
    let inputs = inputs(outcomes);
    let step = merge(generators.count, &inputs)?;
    Ok(Sharded { step, start_at })
}

/// Each pod's outcome as the merge takes it.
pub fn inputs(outcomes: Vec<ShardPod>) -> Vec<ShardInput> {
    outcomes
        .into_iter()
        .enumerate()
        .map(|(k, o)| {
            let index = k as u32;
            match o {
                ShardPod::Result(json) => match serde_json::from_str::<StepResult>(&json) {
                    Ok(step) => ShardInput::Result(Box::new(step)),
                    Err(e) => ShardInput::Missing {
                        index,
                        why: format!("its result line is not a StepResult: {e}"),
                    },
                },
                ShardPod::Missing(why) => ShardInput::Missing { index, why },
            }
        })
        .collect()
}

/// This run, among every run against the namespace: its host, process and start instant.
fn run_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let host = crate::deployer::kubernetes::lease::host();
        let at = loadgen_model::shard::unix_ms(std::time::SystemTime::now());
        format!("{host} {} {at}", std::process::id())
    })
}

/// A Job name from the step id: an RFC 1123 label (it becomes the pods' `job-name` label and
/// host names), unique by a hash of the whole id and the run (a killed run's Job, or another
/// namespace user's, never collides with this one).
pub fn job_name(id: &StepId, run: &str) -> String {
    let text = id.to_string();
    let clean: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    let hash = Sha256::digest(format!("{run}\n{text}").as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("loadgen-shards-{}-{hex}", clean.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_name_is_a_dns_label_unique_per_run_and_step() {
        let id = StepId::new(Some("TD4 campaign"), "r2-cpu0.5-200rps");
        let a = job_name(&id, "host-a 12 1700000000000");
        assert!(a.len() <= 63, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
        assert!(
            a.starts_with("loadgen-shards-td4-campaign-r2-cpu0-5-"),
            "{a}"
        );
        // Another run of the same step (a killed one's Job may still be there): another name.
        assert_ne!(a, job_name(&id, "host-a 13 1700000000999"));
        let other = StepId::new(Some("TD4 campaign"), "r2-cpu0.5-300rps");
        assert_ne!(a, job_name(&other, "host-a 12 1700000000000"));
    }
}
