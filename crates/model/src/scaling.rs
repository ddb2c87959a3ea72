//! What run.json keeps of an autoscale step: the HPA it ran under ([`AutoscaleView`]) and, once
//! a second through the attack, the Deployment's replica counts beside the HPA's desired count
//! and the CPU utilisation it acted on ([`ScalePoint`]) — how fast the autoscaler reacted, as
//! measured, not as configured. A value that could not be read is `None`, never 0.

use serde::{Deserialize, Serialize};

/// The HPA an autoscale step applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoscaleView {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Average CPU utilisation target, percent of each pod's CPU request.
    pub cpu_utilization_pct: u32,
}

/// One sample of the scaling state, `t_s` seconds after the attack began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalePoint {
    pub t_s: u32,
    /// The Deployment's `status.replicas` (pods that exist, Ready or not).
    pub replicas: Option<u32>,
    /// The Deployment's `status.readyReplicas`.
    pub ready_replicas: Option<u32>,
    /// The HPA's `status.desiredReplicas`: what it decided, before pods exist.
    pub desired_replicas: Option<u32>,
    /// The HPA's `status.currentMetrics` CPU utilisation, percent of the request.
    pub cpu_utilization_pct: Option<f64>,
}

/// How the autoscaler reacted over a step's samples: when it first asked for more than it
/// started with, when the extra pods were Ready, and the most it asked for and got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reaction {
    pub started_with: Option<u32>,
    pub first_scale_up_s: Option<u32>,
    pub first_ready_up_s: Option<u32>,
    pub peak_desired: Option<u32>,
    pub peak_ready: Option<u32>,
}

/// The reaction read from `points` (in time order).
pub fn reaction(points: &[ScalePoint]) -> Reaction {
    let started_with = points.iter().find_map(|p| p.ready_replicas.or(p.replicas));
    let above = |v: Option<u32>| matches!((v, started_with), (Some(v), Some(s)) if v > s);
    Reaction {
        started_with,
        first_scale_up_s: points
            .iter()
            .find(|p| above(p.desired_replicas))
            .map(|p| p.t_s),
        first_ready_up_s: points
            .iter()
            .find(|p| above(p.ready_replicas))
            .map(|p| p.t_s),
        peak_desired: points.iter().filter_map(|p| p.desired_replicas).max(),
        peak_ready: points.iter().filter_map(|p| p.ready_replicas).max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: u32, ready: Option<u32>, desired: Option<u32>) -> ScalePoint {
        ScalePoint {
            t_s,
            replicas: ready,
            ready_replicas: ready,
            desired_replicas: desired,
            cpu_utilization_pct: None,
        }
    }

    #[test]
    fn the_reaction_is_when_the_hpa_asked_and_when_pods_were_ready() {
        let points = [
            point(0, Some(1), Some(1)),
            point(1, Some(1), None),
            point(2, Some(1), Some(3)),
            point(3, Some(1), Some(3)),
            point(4, Some(3), Some(4)),
        ];
        let r = reaction(&points);
        assert_eq!(r.started_with, Some(1));
        assert_eq!(r.first_scale_up_s, Some(2));
        assert_eq!(r.first_ready_up_s, Some(4));
        assert_eq!(r.peak_desired, Some(4));
        assert_eq!(r.peak_ready, Some(3));
    }

    #[test]
    fn unread_samples_are_no_reaction_not_zero() {
        let r = reaction(&[point(0, None, None), point(1, None, None)]);
        assert_eq!(r.started_with, None);
        assert_eq!(r.first_scale_up_s, None);
        assert_eq!(r.peak_desired, None);
    }
}
