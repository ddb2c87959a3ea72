//! `loadgen restore SCENARIO`: applies back the original replicas and CPU that a killed
//! `loadgen run` kept in its Deployment's `loadgen.io/original` annotation (a run that ends any
//! other way restores by itself). Nothing to do is not an error.

use anyhow::Context;

use crate::cli::{ExitStatus, RestoreArgs};
use loadgen::deployer::KubernetesDeployer;
use loadgen::plan::{Plan, Target};

/// Runs `loadgen restore`.
pub fn execute(args: RestoreArgs) -> anyhow::Result<ExitStatus> {
    let plan = Plan::load(&args.scenario)?;
    let Target::Kubernetes(target) = &plan.target else {
        anyhow::bail!(
            "{}: restore applies to kind = \"kubernetes\" targets only",
            args.scenario.display()
        );
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut deployer = KubernetesDeployer::new(target);
    let (restored, notes) = runtime.block_on(deployer.restore_kept())?;
    let at = format!("deployment {}/{}", target.namespace, target.deployment);
    for note in notes {
        eprintln!("{at}: {note}");
    }
    match restored {
        Some(shape) => println!("{at}: restored the original kept by a killed run: {shape}"),
        None => println!("{at}: nothing to restore (no {} annotation)", ORIGINAL),
    }
    Ok(ExitStatus::Done)
}

const ORIGINAL: &str = loadgen::deployer::kubernetes::spec::ORIGINAL_ANNOTATION;
