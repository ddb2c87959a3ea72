//! Reconciliation: do the four counts of a step agree (intended, sent, answered OK, counted by
//! the service), and if not, why — client timeouts the service still counted, lost writes, 503
//! shedding. Pure functions of a saved step.

use super::{finding, pct};
use loadgen_model::result::{CheckName, Finding, Severity, StepResult};

/// Explains the gaps between intended, sent, ok and the service's counter delta.
pub(super) fn findings(step: &StepResult, out: &mut Vec<Finding>) {
    let Some(counter) = &step.counter else {
        out.push(finding(
            CheckName::CounterReconcile,
            Severity::Info,
            step,
            "no business counter is configured: the counted ratio is not computed, and every \
             verdict on this step rests on the client's view alone (what the generator saw)"
                .into(),
        ));
        return;
    };
    if counter.went_back {
        out.push(finding(
            CheckName::CounterReconcile,
            Severity::Fail,
            step,
            format!(
                "the service's counter went backwards ({} before the step, {} after): a \
                 replica restarted or its store was reset, so this step's count is unknown, \
                 not negative",
                counter.before.map_or("?".into(), |v| v.to_string()),
                counter.after.map_or("?".into(), |v| v.to_string()),
            ),
        ));
        return;
    }
    let Some(delta) = counter.delta else {
        out.push(finding(
            CheckName::CounterReconcile,
            Severity::Warn,
            step,
            "the service's counter was not read: the counted ratio is unknown, not zero".into(),
        ));
        return;
    };
    let ok = step.ok as i64;
    let timeouts = step.outcomes.timeout as i64;
    let not_ok = (step.intended as i64) - ok;
    if delta == ok {
        out.push(finding(
            CheckName::CounterReconcile,
            Severity::Info,
            step,
            format!(
                "counter delta {delta} equals the generator's OK count; {not_ok} of {} intended requests were not counted",
                step.intended
            ),
        ));
    } else if delta > ok {
        let extra = delta - ok;
        let (sev, why) = if extra <= timeouts {
            (
                Severity::Info,
                format!("consistent with client timeouts ({timeouts}) whose clicks the service still stored after the generator gave up"),
            )
        } else {
            (
                Severity::Warn,
                format!("more than the {timeouts} client timeouts explain: something else wrote to the counter during the step, or a 5xx was stored"),
            )
        };
        out.push(finding(
            CheckName::CounterReconcile,
            sev,
            step,
            format!("the service counted {extra} more clicks than it acknowledged with 2xx; {why}"),
        ));
    } else {
        out.push(finding(
            CheckName::LostWrites,
            Severity::Fail,
            step,
            format!(
                "the service acknowledged {ok} clicks with 2xx but its counter grew by only {delta}: {} acknowledged clicks were lost",
                ok - delta
            ),
        ));
    }
}

pub(super) fn shedding(step: &StepResult, out: &mut Vec<Finding>) {
    let shed = step.outcomes.status.get("503").copied().unwrap_or(0);
    if shed > 0 && step.sent > 0 {
        out.push(finding(
            CheckName::Shedding,
            Severity::Info,
            step,
            format!(
                "the service refused {shed} requests with 503 ({} of those sent): it was past capacity and shed load instead of queueing it",
                pct(shed as f64 / step.sent as f64)
            ),
        ));
    }
    let timeouts = step.outcomes.timeout;
    if timeouts > 0 && step.sent > 0 {
        out.push(finding(
            CheckName::Timeouts,
            Severity::Info,
            step,
            format!(
                "{timeouts} requests got no answer within the timeout ({} of those sent)",
                pct(timeouts as f64 / step.sent as f64)
            ),
        ));
    }
}
