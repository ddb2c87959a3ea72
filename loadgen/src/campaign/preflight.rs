//! The run's pre-flight for a service loadgen does not know: before the first step, one
//! replica (with its dependencies) is started and stopped, and the business counter is read
//! once. A command that is not found or exits before it is ready, a port never ready, a metric
//! that is absent or a JSON pointer that finds nothing is then one clear line and exit 2 —
//! bad input — instead of a run whose every step failed.

use std::time::Duration;

use crate::deployer::{DeployError, Deployer};
use crate::plan::counter::Counter;
use crate::plan::{Plan, Target, Topology};
use crate::probe::business::{self, CounterError};

/// Why the pre-flight refused the scenario.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("the service did not start: {0}")]
    Deploy(DeployError),
    #[error("the counter cannot be read: {0}")]
    Counter(CounterError),
}

/// Checks that the plan's service starts and its counter reads; nothing is left running.
pub async fn check(
    plan: &Plan,
    deployer: &mut Deployer,
    bound: Duration,
) -> Result<(), PreflightError> {
    let needs_deploy = matches!(plan.target, Target::Command(_));
    // A PromQL counter through the managed Prometheus has nothing to ask before the run's
    // Prometheus has scraped a step: its first step says what it reads.
    let reads_counter = matches!(
        plan.counter,
        Counter::Metric { .. } | Counter::Http { .. } | Counter::Promql { url: Some(_), .. }
    );
    let url_counter = reads_counter && matches!(plan.target, Target::Url { .. });
    if !(needs_deploy || url_counter) {
        return Ok(());
    }
    let one = Topology {
        replicas: 1,
        cpu_limit_cores: None,
        autoscale: None,
        tls: false,
        ..first_topology(plan)
    };
    let deployment = deployer
        .deploy(&one, bound)
        .await
        .map_err(PreflightError::Deploy)?;
    let read = if reads_counter {
        business::read(&deployment, &plan.counter)
            .await
            .0
            .map(|_| ())
    } else {
        Ok(())
    };
    if let Err(e) = deployment.teardown().await {
        tracing::warn!("after the pre-flight: {e}");
    }
    read.map_err(PreflightError::Counter)
}

/// A topology of the plan (the store and other fields of its first step or search).
fn first_topology(plan: &Plan) -> Topology {
    plan.steps
        .first()
        .map(|s| s.topology.clone())
        .or_else(|| {
            plan.searches
                .first()
                .and_then(|s| s.configurations.first())
                .map(|c| c.topology.clone())
        })
        .unwrap_or(Topology {
            replicas: 1,
            cpu_limit_cores: None,
            store: crate::plan::Store::Memory,
            tls: false,
            autoscale: None,
        })
}
