//! `[generators]` and a step's `generators`: how many generators share a step's schedule (each
//! one shard of it) and whether local ones are pinned one per CPU, checked once with the key
//! and position of what is wrong.

use toml::Spanned;

use super::Expander;
use crate::plan::{limits, Generators};
use crate::scenario::value::Count;
use crate::scenario::{ScenarioError, TargetKind};

impl Expander<'_> {
    /// Checks the `[generators]` table: its count, and `pin` only where generators are local
    /// processes.
    pub(super) fn check_generators(&self) -> Result<(), ScenarioError> {
        let Some(g) = &self.sc.generators else {
            return Ok(());
        };
        let g = g.get_ref();
        if let Some(c) = &g.count {
            self.generator_count(c, "generators.count")?;
        }
        let cluster = *self.sc.target.get_ref().kind.get_ref() == TargetKind::Kubernetes;
        if let (Some(pin), true) = (&g.pin, cluster) {
            if *pin.get_ref() {
                return self.err(
                    pin.span(),
                    "generators.pin",
                    "expected no pin on a kubernetes target: each generator is a pod there, \
                     placed and limited by its Job, not pinned to a CPU by loadgen",
                );
            }
        }
        Ok(())
    }

    /// A generator count within [`limits::MAX_GENERATORS`].
    pub(super) fn generator_count(
        &self,
        c: &Spanned<Count>,
        key: &str,
    ) -> Result<u32, ScenarioError> {
        match c.get_ref().small() {
            Some(n) if n <= limits::MAX_GENERATORS => Ok(n),
            _ => self.err(
                c.span(),
                key,
                format!(
                    "expected at most {} generators per step, got {}",
                    limits::MAX_GENERATORS,
                    c.get_ref().0
                ),
            ),
        }
    }

    /// The generators of a step with its own count `step` (checked already), over the
    /// scenario's `[generators]` (checked by [`Expander::check_generators`]).
    pub(super) fn generators(&self, step: Option<u32>) -> Generators {
        let g = self.sc.generators.as_ref().map(|g| g.get_ref());
        let default = g
            .and_then(|g| g.count.as_ref())
            .and_then(|c| c.get_ref().small())
            .unwrap_or(1);
        Generators {
            count: step.unwrap_or(default),
            pin: g.and_then(|g| g.pin.as_ref()).is_some_and(|p| *p.get_ref()),
        }
    }
}
