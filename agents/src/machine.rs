//! The machine a run's numbers come from.
//!
//! libtorch's CPU operators pick their kernels by the processor (ATen's "CPU capability"), and MKL, under them,
//! picks its own code path the same way, so one seed, one build and one configuration give other numbers on
//! another processor: the same run differs from its first update on (the README's session 27 reruns). A figure is
//! therefore reproducible on the machine that made it. Every checkpoint and `summary.json` record the machines a
//! run ran on ([`MachinePart`]), a resume on a machine that computes differently says so, and `compare` names the
//! machines of its runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Environment variables that change libtorch's or MKL's numbers: their code path or their threads.
pub const NUMERIC_ENV: &[&str] = &[
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_DEBUG_CPU_TYPE",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
];

/// What decides a run's floating-point results besides its code and configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// The processor's model name (`/proc/cpuinfo`), or "unknown".
    pub cpu: String,
    /// `std::env::consts::ARCH` and `OS` (the OS's libm computes the simulators' sines and cosines).
    pub arch: String,
    pub os: String,
    /// Logical processors (information: the threads a run uses are recorded by `torch_threads` and the
    /// configuration).
    pub logical_cpus: usize,
    /// The vector extensions present, of those libtorch and MKL choose their code paths by.
    pub simd: Vec<String>,
    /// The kernels libtorch's CPU operators dispatch to: "avx512", "avx2" or "default", by ATen's rule
    /// (`ATEN_CPU_CAPABILITY` if set to one of those; else AVX-512 VL, BW and DQ with FMA; else AVX2 with FMA).
    pub kernels: String,
    /// The libtorch this binary was built against.
    pub libtorch: String,
    /// libtorch's intra-op threads when the record was taken.
    pub torch_threads: usize,
    /// The variables of [`NUMERIC_ENV`] that are set, with their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub numeric_env: BTreeMap<String, String>,
}

/// A stretch of a run on one machine: from `from_env_steps` (the first part's 0; a resume's, where it resumed) to
/// the next part's start or the run's end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachinePart {
    pub from_env_steps: u64,
    pub machine: Machine,
}

/// The x86 extensions recorded in [`Machine::simd`] (feature names of `is_x86_feature_detected!`).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn simd_present() -> Vec<String> {
    let mut v = Vec::new();
    macro_rules! probe {
        ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { v.push($f.to_string()); } )* };
    }
    probe!("sse4.2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vnni", "avx512bf16");
    v
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn simd_present() -> Vec<String> {
    Vec::new()
}

/// ATen's choice of CPU kernels from the extensions present and `ATEN_CPU_CAPABILITY` (DispatchStub.cpp's
/// `compute_cpu_capability` on x86; elsewhere "default", which ATen's SVE and VSX paths are not told apart from).
pub fn aten_kernels(simd: &[String], env: Option<&str>) -> String {
    if let Some(e) = env.filter(|e| ["avx512", "avx2", "default"].contains(e)) {
        return e.to_string();
    }
    let has = |f: &str| simd.iter().any(|s| s == f);
    if ["avx512vl", "avx512bw", "avx512dq", "fma"].iter().all(|f| has(f)) {
        "avx512".into()
    } else if has("avx2") && has("fma") {
        "avx2".into()
    } else {
        "default".into()
    }
}

/// The processor's model name from a `/proc/cpuinfo` text ("model name" on x86, "Processor" or "CPU part" on some
/// ARM kernels).
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Processor", "cpu model", "CPU part"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    })
}

impl Machine {
    /// This process's machine now.
    pub fn current() -> Machine {
        let simd = simd_present();
        let numeric_env: BTreeMap<String, String> =
            NUMERIC_ENV.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect();
        let kernels = aten_kernels(&simd, numeric_env.get("ATEN_CPU_CAPABILITY").map(String::as_str));
        Machine {
            cpu: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| cpu_model(&s)).unwrap_or_else(|| "unknown".into()),
            arch: std::env::consts::ARCH.into(),
            os: std::env::consts::OS.into(),
            logical_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            simd,
            kernels,
            libtorch: option_env!("REBEL_LIBTORCH_VERSION").unwrap_or("unknown").into(),
            torch_threads: tch::get_num_threads().max(0) as usize,
            numeric_env,
        }
    }

    /// Whether `self` and `other` compute alike: no [`Machine::differences`].
    pub fn computes_like(&self, other: &Machine) -> bool {
        self.differences(other).is_empty()
    }

    /// What differs between `self` and `other` that can change a run's numbers, as "field: self's → other's"
    /// (every field but `logical_cpus`); empty where they compute alike.
    pub fn differences(&self, other: &Machine) -> Vec<String> {
        let mut d = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                d.push(format!("{name}: {a} → {b}"));
            }
        };
        field("processor", self.cpu.clone(), other.cpu.clone());
        field("architecture", format!("{} {}", self.arch, self.os), format!("{} {}", other.arch, other.os));
        field("vector extensions", self.simd.join(" "), other.simd.join(" "));
        field("libtorch kernels", self.kernels.clone(), other.kernels.clone());
        field("libtorch", self.libtorch.clone(), other.libtorch.clone());
        field("libtorch threads", self.torch_threads.to_string(), other.torch_threads.to_string());
        let env = |m: &Machine| {
            if m.numeric_env.is_empty() {
                "none set".to_string()
            } else {
                m.numeric_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            }
        };
        field("numeric environment variables", env(self), env(other));
        d
    }

    /// One line: "AMD EPYC (x86_64 linux, avx2 kernels, libtorch 2.11.0, 1 libtorch thread)", with the numeric
    /// environment variables where any is set.
    pub fn label(&self) -> String {
        let env: Vec<String> = self.numeric_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{} ({} {}, {} kernels, libtorch {}, {} libtorch thread{}{})",
            self.cpu,
            self.arch,
            self.os,
            self.kernels,
            self.libtorch,
            self.torch_threads,
            if self.torch_threads == 1 { "" } else { "s" },
            if env.is_empty() { String::new() } else { format!(", {}", env.join(" ")) }
        )
    }
}

/// The distinct machines of `ranks` (rank 0's first): the machines of one stretch of a run.
pub fn distinct(ranks: &[Machine]) -> Vec<Machine> {
    let mut out: Vec<Machine> = Vec::new();
    for m in ranks {
        if !out.iter().any(|o| o.computes_like(m)) {
            out.push(m.clone());
        }
    }
    out
}

/// The machine record of a run that goes on from `env_steps` on `now` (the machines of its ranks, rank 0's first:
/// one for a run in one process), after the parts `before` (a resumed checkpoint's record; empty for a new run, or
/// for a checkpoint written before machines were recorded, whose earlier stretch is then unknown and left out).
/// Parts with the same `from_env_steps` ran side by side (the ranks of a data-parallel run on several machines).
/// Returns the record and the notes to print: a stretch that goes on on machines that compute differently from
/// the last stretch's, and ranks on machines that compute differently from each other.
pub fn go_on(before: &[MachinePart], env_steps: u64, now: &[Machine]) -> (Vec<MachinePart>, Vec<String>) {
    let now = distinct(now);
    let mut notes = Vec::new();
    let last: Vec<&Machine> = match before.last() {
        Some(l) => before.iter().filter(|p| p.from_env_steps == l.from_env_steps).map(|p| &p.machine).collect(),
        None => Vec::new(),
    };
    // a new stretch unless the last one ran on the same machines (a new run has no last one)
    let changed = last.len() != now.len() || !now.iter().all(|m| last.iter().any(|o| o.computes_like(m)));
    if !last.is_empty() && changed {
        let diff = match now.iter().find(|m| !last.iter().any(|o| o.computes_like(m))) {
            Some(m) => last[0].differences(m).join("; "),
            None => format!("{} machine(s) until now, {} now", last.len(), now.len()),
        };
        notes.push(format!(
            "this run goes on from {env_steps} env steps on another machine than it ran on until now ({diff}). \
             libtorch's and MKL's kernels follow the processor, so from here its numbers are this machine's draw: \
             they will not equal those of an uninterrupted run on the first one (exact resume holds on the same \
             machine). The run records both (`machines` in its checkpoint and summary.json)"
        ));
    }
    if now.len() > 1 {
        notes.push(format!(
            "the ranks run on {} machines that compute differently ({}): the run's numbers depend on which rank ran \
             where, and another placement of the ranks gives others",
            now.len(),
            now.iter().map(Machine::label).collect::<Vec<_>>().join("; ")
        ));
    }
    let mut parts = before.to_vec();
    if changed {
        parts.extend(now.into_iter().map(|machine| MachinePart { from_env_steps: env_steps, machine }));
    }
    (parts, notes)
}

/// The distinct machines of a set of records (by [`Machine::differences`]), each with how many records ran on
/// it; a record with several parts counts on each of its machines.
pub fn tally<'a>(records: impl IntoIterator<Item = &'a [MachinePart]>) -> Vec<(Machine, usize)> {
    let mut out: Vec<(Machine, usize)> = Vec::new();
    for parts in records {
        let mut seen: Vec<usize> = Vec::new();
        for p in parts {
            let i = match out.iter().position(|(m, _)| m.computes_like(&p.machine)) {
                Some(i) => i,
                None => {
                    out.push((p.machine.clone(), 0));
                    out.len() - 1
                }
            };
            if !seen.contains(&i) {
                seen.push(i);
                out[i].1 += 1;
            }
        }
    }
    out
}

/// The machine record of a `summary.json` (its `machines`): empty where it has none, is `null` (a failed run) or
/// does not parse.
pub fn of_summary(summary: &serde_json::Value) -> Vec<MachinePart> {
    summary.get("machines").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

/// A report's sentence on the machines its runs (their records) ran on: all on one, or on several (then its rows
/// are not one machine's draws), and how many runs record none.
pub fn report_line(records: &[Vec<MachinePart>]) -> String {
    let t = tally(records.iter().map(Vec::as_slice));
    let none = records.iter().filter(|r| r.is_empty()).count();
    let each: Vec<String> = t.iter().map(|(m, n)| format!("{} ({n} run{})", m.label(), if *n == 1 { "" } else { "s" })).collect();
    let mut s = match t.len() {
        0 => "Machines: none recorded.".to_string(),
        1 => format!("Machine: every run that records one ran on {}.", each[0]),
        k => format!(
            "**The runs ran on {k} machines that compute differently, so the rows are not one machine's draws** \
             (libtorch's kernels follow the processor): {}.",
            each.join("; ")
        ),
    };
    if none > 0 {
        s.push_str(&format!(" {none} run(s) record no machine (failed, or written before machines were recorded)."));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(cpu: &str) -> Machine {
        Machine {
            cpu: cpu.into(),
            arch: "x86_64".into(),
            os: "linux".into(),
            logical_cpus: 2,
            simd: vec!["avx".into(), "fma".into(), "avx2".into()],
            kernels: "avx2".into(),
            libtorch: "2.11.0".into(),
            torch_threads: 1,
            numeric_env: BTreeMap::new(),
        }
    }

    /// ATen's rule: the variable wins when valid; AVX-512 needs VL, BW, DQ and FMA; AVX2 needs FMA.
    #[test]
    fn the_kernels_follow_atens_rule() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(aten_kernels(&s(&["avx", "fma", "avx2"]), None), "avx2");
        assert_eq!(aten_kernels(&s(&["avx", "avx2"]), None), "default");
        assert_eq!(aten_kernels(&s(&["fma", "avx2", "avx512f", "avx512vl", "avx512bw", "avx512dq"]), None), "avx512");
        assert_eq!(aten_kernels(&s(&["fma", "avx2", "avx512f", "avx512vl", "avx512bw"]), None), "avx2");
        assert_eq!(aten_kernels(&s(&["fma", "avx2", "avx512vl", "avx512bw", "avx512dq"]), Some("default")), "default");
        assert_eq!(aten_kernels(&s(&["fma", "avx2"]), Some("avx512")), "avx512");
        assert_eq!(aten_kernels(&s(&["fma", "avx2"]), Some("sse")), "avx2");
    }

    #[test]
    fn the_model_name_is_read_from_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(x86).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\nCPU part\t: 0xd0c\n").as_deref(), Some("0xd0c"));
        assert_eq!(cpu_model("processor\t: 0\nmodel name\t:\n"), None);
    }

    /// This machine's record is filled in and computes like itself.
    #[test]
    fn the_current_machine_is_described() {
        let now = Machine::current();
        assert!(!now.cpu.is_empty() && !now.arch.is_empty() && now.logical_cpus >= 1 && now.torch_threads >= 1, "{now:?}");
        assert!(["avx512", "avx2", "default"].contains(&now.kernels.as_str()), "{now:?}");
        assert!(now.differences(&Machine::current()).is_empty() && now.computes_like(&Machine::current()));
        let back: Machine = serde_json::from_str(&serde_json::to_string(&now).unwrap()).unwrap();
        assert_eq!(back, now);
        assert!(now.label().starts_with(&now.cpu), "{}", now.label());
    }

    /// A new run gets one part; a resume on the same machine adds none; one on another machine adds a part from
    /// where it resumed and a note naming what differs; the logical CPUs alone do not count.
    #[test]
    fn a_resume_on_another_machine_is_recorded_and_told() {
        let (first, notes) = go_on(&[], 0, &[m("AMD EPYC")]);
        assert_eq!((first.len(), first[0].from_env_steps, notes.len()), (1, 0, 0));
        let (same, notes) = go_on(&first, 5000, &[Machine { logical_cpus: 64, ..m("AMD EPYC") }]);
        assert_eq!((same, notes.len()), (first.clone(), 0));
        let mut other = m("Intel Xeon");
        other.numeric_env.insert("MKL_CBWR".into(), "COMPATIBLE".into());
        let (two, notes) = go_on(&first, 5000, std::slice::from_ref(&other));
        assert_eq!(two.len(), 2);
        assert_eq!((two[1].from_env_steps, &two[1].machine), (5000, &other));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("from 5000 env steps") && notes[0].contains("processor: AMD EPYC → Intel Xeon"), "{}", notes[0]);
        assert!(notes[0].contains("numeric environment variables: none set → MKL_CBWR=COMPATIBLE"), "{}", notes[0]);
        // a checkpoint from before machines were recorded: the record starts where it resumed, without a note
        let (old, notes) = go_on(&[], 7000, &[m("AMD EPYC")]);
        assert_eq!((old[0].from_env_steps, notes.len()), (7000, 0));
    }

    /// Ranks on two kinds of machine: both recorded side by side, told once; the same pair again (in any rank
    /// order) adds nothing; one of them alone is a change.
    #[test]
    fn ranks_on_machines_that_differ_are_recorded_side_by_side() {
        let (a, b) = (m("A"), m("B"));
        let (parts, notes) = go_on(&[], 0, &[a.clone(), b.clone(), a.clone()]);
        assert_eq!(parts.iter().map(|p| (p.from_env_steps, p.machine.cpu.as_str())).collect::<Vec<_>>(), [(0, "A"), (0, "B")]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("the ranks run on 2 machines that compute differently (A (x86_64"), "{}", notes[0]);
        let (again, notes) = go_on(&parts, 900, &[b.clone(), a.clone()]);
        assert_eq!((again, notes.len()), (parts.clone(), 1));
        let (fewer, notes) = go_on(&parts, 900, std::slice::from_ref(&a));
        assert_eq!(fewer.len(), 3);
        assert!(notes[0].contains("(2 machine(s) until now, 1 now)"), "{notes:?}");
    }

    #[test]
    fn the_tally_counts_each_record_once_per_machine() {
        let a = vec![MachinePart { from_env_steps: 0, machine: m("A") }];
        let b = vec![MachinePart { from_env_steps: 0, machine: m("B") }];
        let ab = vec![a[0].clone(), MachinePart { from_env_steps: 10, machine: m("B") }, MachinePart { from_env_steps: 20, machine: m("B") }];
        let t = tally([a.as_slice(), a.as_slice(), b.as_slice(), ab.as_slice()]);
        assert_eq!(t.iter().map(|(m, n)| (m.cpu.as_str(), *n)).collect::<Vec<_>>(), vec![("A", 3), ("B", 2)]);
        let one = report_line(&[a.clone(), a.clone(), vec![]]);
        assert!(one.starts_with("Machine: every run that records one ran on A (") && one.contains("(2 runs)"), "{one}");
        assert!(one.ends_with("1 run(s) record no machine (failed, or written before machines were recorded)."), "{one}");
        let two = report_line(&[a.clone(), b.clone(), ab.clone()]);
        assert!(two.starts_with("**The runs ran on 2 machines") && two.contains("A (x86_64 linux, avx2 kernels") && two.contains("(2 runs); B ("), "{two}");
        assert_eq!(report_line(&[]), "Machines: none recorded.");
        let summary = serde_json::json!({"machines": serde_json::to_value(&ab).unwrap()});
        assert_eq!(of_summary(&summary), ab);
        for bad in [serde_json::json!(null), serde_json::json!({}), serde_json::json!({"machines": "x"}), serde_json::json!({"machines": [{"from_env_steps": -1}]})] {
            assert!(of_summary(&bad).is_empty());
        }
    }
}
