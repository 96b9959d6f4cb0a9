//! An algorithm defined outside the agents crate, as docs/architecture.md describes: one config type
//! and one learner (here "REBEL without epochs": a few full-batch gradient steps of the pairwise
//! regression `((ln π_θ(a)/π_t(a) − ln π_θ(b)/π_t(b))/η − (r(a) − r(b)))²`, written from scratch),
//! plus one registration line. It is trained end to end through the public API on the registered
//! Swimmer-v5 and must improve its evaluation return, and its run must resume exactly.

use rebel_agents::algorithm::{self, AlgoConfig, AlgoError, Algorithm, Batch, Collect, Ctx, Init, Update};
use rebel_agents::rollout::{segment_log_prob, PairSpec};
use rebel_agents::runconfig::load_config;
use rebel_agents::train::{train, RunOptions, TrainConfig};
use serde::{Deserialize, Serialize};
use tch::Kind;

/// The algorithm's section `[pairwise]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PairwiseConfig {
    eta: f64,
    lr: f64,
    steps: usize,
    groups: usize,
}

impl Default for PairwiseConfig {
    fn default() -> Self {
        PairwiseConfig { eta: 10.0, lr: 1e-3, steps: 8, groups: 4 }
    }
}

impl AlgoConfig for PairwiseConfig {
    const NAME: &'static str = "pairwise";

    fn validate(&self) -> Result<(), String> {
        if self.eta > 0.0 && self.lr > 0.0 && self.steps > 0 && self.groups > 0 {
            Ok(())
        } else {
            Err("pairwise.eta, pairwise.lr, pairwise.steps and pairwise.groups must be > 0".into())
        }
    }

    fn build(&self, _init: &Init) -> Result<Box<dyn Algorithm>, String> {
        Ok(Box::new(Pairwise(self.clone())))
    }
}

struct Pairwise(PairwiseConfig);

impl Algorithm for Pairwise {
    fn collect(&self) -> Collect {
        // pairs branching every 250 steps of a trunk episode, with a 250-step shared-noise tail
        Collect::Segments { groups: self.0.groups, spec: PairSpec::new(2, 250, 250) }
    }

    fn lr(&self) -> f64 {
        self.0.lr
    }

    fn update(&mut self, ctx: &mut Ctx, batch: Option<&Batch>) -> Result<Update, AlgoError> {
        let t = &batch.expect("segments").tensors;
        let r = ctx.scorer.segment_scores(t);
        let segment_score = f64::try_from(r.mean(Kind::Float)).unwrap();
        let r = (&r - r.mean(Kind::Float)) / (r.std(true) + 1e-8);
        let dr = r.view([-1, 2]).select(1, 0) - r.view([-1, 2]).select(1, 1);
        let logp_old = tch::no_grad(|| segment_log_prob(ctx.policy, t));
        let mut last = f64::NAN;
        for step in 0..self.0.steps {
            let lr = (segment_log_prob(ctx.policy, t) - &logp_old).view([-1, 2]);
            let dx = (lr.select(1, 0) - lr.select(1, 1)) / self.0.eta;
            let loss = (dx - &dr).square().mean(Kind::Float);
            last = ctx.adam.minimize(&loss, 1.0, "pairwise", step).map_err(AlgoError::Diverged)?.0;
        }
        Ok(Update { stats: vec![("losses/pairwise", last)], segment_score, ..Update::default() })
    }
}

#[test]
fn an_algorithm_registered_from_outside_trains_end_to_end() {
    algorithm::register::<PairwiseConfig>();
    assert!(algorithm::names().contains(&"pairwise".to_string()));
    // configured like a built-in: `algo` and its section, unknown keys listed
    let base = "algo = \"pairwise\"\nenv_steps = 120000\nthreads = 2\n[eval]\nevery_iters = 1000\nepisodes = 4\n";
    let cfg: TrainConfig = load_config(base, None, &["pairwise.steps=8".into()]).unwrap();
    let bad: TrainConfig = load_config(base, None, &["pairwise.stepz=8".into()]).unwrap();
    let e = train(&bad, &RunOptions::default()).unwrap_err().to_string();
    assert!(e.contains("pairwise.stepz") && e.contains("steps"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { run_dir: Some(dir.path().join("run")), ..RunOptions::default() };
    let s = train(&cfg, &opts).unwrap();
    eprintln!("pairwise: eval {:.1} -> {:.1}", s.initial_eval_true_return_mean, s.eval_true_return_mean);
    assert_eq!(s.algo, "pairwise");
    let written = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    assert!(written.contains("[pairwise]") && written.contains("eta = 10.0") && !written.contains("[rebel]"), "{written}");
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    assert!(metrics.contains("losses/pairwise"), "the update's statistics are logged");
    assert!(
        s.eval_true_return_mean > s.initial_eval_true_return_mean + 20.0,
        "the pairwise regression should learn to swim: {} -> {}",
        s.initial_eval_true_return_mean,
        s.eval_true_return_mean
    );
}

/// An algorithm that does not say it reduces its statistics over the ranks (`Algorithm::data_parallel`, false by
/// default) is refused on every rank of a data-parallel run, with the reason, before anything is written.
#[test]
fn an_algorithm_without_data_parallel_support_is_refused_on_every_rank() {
    algorithm::register::<PairwiseConfig>();
    let cfg: TrainConfig = load_config("algo = \"pairwise\"\nenv_steps = 10000\nthreads = 1\n", None, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { run_dir: Some(dir.path().join("run")), ..RunOptions::default() };
    let handles: Vec<_> = rebel_dist::ThreadGroup::new(2)
        .into_iter()
        .map(|r| {
            let (cfg, opts) = (cfg.clone(), opts.clone());
            std::thread::spawn(move || rebel_agents::train::train_in(&cfg, &opts, &r).map_err(|e| e.to_string()))
        })
        .collect();
    for h in handles {
        let e = h.join().unwrap().unwrap_err();
        assert!(e.contains("\"pairwise\" does not support data-parallel") && e.contains("without mpirun"), "{e}");
    }
    assert!(!dir.path().join("run").exists(), "nothing is written before the ranks agree");
}
