//! The class of a machine, as `loadgen check` compares machines: what bears on capacity and
//! stays put between hosted CI runners of one label — the CPU count, the memory rounded to a
//! power-of-two GiB bucket, and the cgroup mode that enforces the CPU limits. Not the CPU
//! model string (runners of one label get different ones from run to run) nor the exact
//! memory (a "16 GB" runner reports 15.6 GiB one day and 15.9 the next), nor the hostname.

use loadgen_model::result::MachineInfo;

/// Bytes in a GiB.
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What two machines must share for their capacities to be compared. A fact one side did not
/// record (`None`) is not held against it.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineClass {
    pub cpus: Option<u32>,
    /// The memory's power-of-two GiB bucket: the power of two at or above the memory the
    /// kernel reports, which is always a little under what is installed (7.7 GiB is 8).
    pub memory_gib: Option<f64>,
    /// `v1`, `v2`, `hybrid` or `none`.
    pub cgroup_mode: Option<String>,
}

impl MachineClass {
    pub fn of(machine: &MachineInfo) -> MachineClass {
        MachineClass {
            cpus: machine.cpus,
            memory_gib: machine.memory_bytes.and_then(memory_bucket_gib),
            cgroup_mode: machine.cgroup_mode.clone(),
        }
    }

    /// How `self` (the baseline's class) and `run` differ, in words; empty when the same class.
    pub fn differences(&self, run: &MachineClass) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |what: &str, then: Option<String>, now: Option<String>| {
            if let (Some(then), Some(now)) = (then, now) {
                if then != now {
                    out.push(format!(
                        "different machine class: {what} {then} in the baseline, {now} in this run"
                    ));
                }
            }
        };
        differ(
            "CPUs",
            self.cpus.map(|c| c.to_string()),
            run.cpus.map(|c| c.to_string()),
        );
        differ("memory", self.memory_gib.map(gib), run.memory_gib.map(gib));
        differ(
            "cgroup mode",
            self.cgroup_mode.clone(),
            run.cgroup_mode.clone(),
        );
        out
    }
}

/// The power of two (in GiB) at or above `bytes`; `None` for 0. Rounding up, not to the
/// nearest: the kernel's MemTotal of an 8 GiB machine is 7.6 to 7.9 GiB, never over 8, so the
/// bucket's edges sit where no machine's memory is.
pub fn memory_bucket_gib(bytes: u64) -> Option<f64> {
    (bytes > 0).then(|| 2f64.powi((bytes as f64 / GIB).log2().ceil() as i32))
}

/// "~8 GiB" (a bucket, not a reading).
fn gib(v: f64) -> String {
    format!("~{v} GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(cpus: u32, memory_gib: f64, cgroup: &str, model: &str) -> MachineInfo {
        MachineInfo {
            hostname: Some("runner-1234".into()),
            cpus: Some(cpus),
            kernel: Some("6.5.0-azure".into()),
            cgroup_mode: Some(cgroup.into()),
            memory_bytes: Some((memory_gib * GIB) as u64),
            cpu_model: Some(model.into()),
        }
    }

    #[test]
    fn memory_rounds_up_to_a_power_of_two() {
        let bucket = |g: f64| memory_bucket_gib((g * GIB) as u64).unwrap();
        assert_eq!(bucket(7.75), 8.0);
        assert_eq!(bucket(7.6), 8.0);
        assert_eq!(bucket(8.0), 8.0);
        assert_eq!(bucket(4.5), 8.0);
        assert_eq!(bucket(3.8), 4.0);
        assert_eq!(bucket(15.6), 16.0);
        // This project's machine (scenarios/ci.baseline.json).
        assert_eq!(memory_bucket_gib(25_276_502_016), Some(32.0));
        assert_eq!(bucket(0.5), 0.5);
        assert_eq!(memory_bucket_gib(0), None);
    }

    #[test]
    fn runners_of_one_label_are_one_class_whatever_their_cpu_model() {
        let a = machine(4, 15.6, "v2", "AMD EPYC 7763 64-Core Processor");
        let b = machine(
            4,
            15.9,
            "v2",
            "Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz",
        );
        assert_eq!(MachineClass::of(&a), MachineClass::of(&b));
        assert!(MachineClass::of(&a)
            .differences(&MachineClass::of(&b))
            .is_empty());
    }

    #[test]
    fn cpus_memory_bucket_and_cgroup_mode_each_make_another_class() {
        let base = MachineClass::of(&machine(2, 7.7, "v1", "x"));
        let words = |m: MachineInfo| base.differences(&MachineClass::of(&m)).join("; ");
        assert_eq!(
            words(machine(4, 7.7, "v1", "x")),
            "different machine class: CPUs 2 in the baseline, 4 in this run"
        );
        assert_eq!(
            words(machine(2, 16.0, "v1", "x")),
            "different machine class: memory ~8 GiB in the baseline, ~16 GiB in this run"
        );
        assert_eq!(
            words(machine(2, 7.7, "v2", "x")),
            "different machine class: cgroup mode v1 in the baseline, v2 in this run"
        );
        // What one side did not record is not held against it.
        let unknown = MachineInfo {
            memory_bytes: None,
            cgroup_mode: None,
            ..machine(2, 1.0, "v1", "x")
        };
        assert_eq!(words(unknown), "");
    }
}
