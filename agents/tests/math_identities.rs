//! The identities of rebel.md §3, checked with the project's own `rebel_loss` and `GaussianPolicy`, plus the
//! Gaussian log-density against its closed form and determinism of sampling. All in f64.
//!
//! (a) tabular softmax: the loss is exactly 0 at theta_t + eta·r, and optimisation reaches pi_t·exp(eta r)/Z;
//! (b) on the MLP policy: autograd ∇loss at theta_t = −(2/eta)·mean_pairs Δr·(g − g') (and = (4/eta)·∇ of the
//!     RLOO(k=2) loss);
//! (c) on a linear-Gaussian policy: the Gauss–Newton step on the loss is eta·A⁺b, with A ≈ 2F and b ≈ 2∇J
//!     (analytic F and ∇J), so the step ≈ eta·F⁺∇J, the natural gradient.

use rebel_agents::seeding::ChaCha8Rng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rebel_agents::losses::{rebel_loss, rloo_loss};
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

fn t(x: &[f64]) -> Tensor {
    Tensor::from_slice(x)
}

fn max_abs(x: &Tensor) -> f64 {
    x.abs().max().double_value(&[])
}

fn randn(shape: &[i64], rng: &mut ChaCha8Rng) -> Tensor {
    let n: i64 = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    t(&v).view(shape)
}

/// Per-sample gradients of `logp [N]` with respect to the policy parameters: `[N, P]`.
fn per_sample_grads(policy: &GaussianPolicy, logp: &Tensor) -> Tensor {
    let params = policy.parameters();
    let n = logp.size()[0];
    let rows: Vec<Tensor> = (0..n)
        .map(|i| {
            let gs = Tensor::run_backward(&[logp.get(i)], &params, true, false);
            Tensor::cat(&gs.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(), 0)
        })
        .collect();
    Tensor::stack(&rows, 0)
}

// ---------------------------------------------------------------------------------------------------------
// (a) tabular softmax

/// All ordered pairs (a, b) of `n_actions` actions, stored adjacently: `[2·n_actions²]` action indices.
fn all_pairs(n_actions: i64) -> Vec<i64> {
    let mut v = Vec::new();
    for a in 0..n_actions {
        for b in 0..n_actions {
            v.push(a);
            v.push(b);
        }
    }
    v
}

fn tabular_loss(theta: &Tensor, theta_t: &Tensor, r: &Tensor, actions: &Tensor, eta: f64) -> Tensor {
    let lp_new = theta.log_softmax(0, Kind::Double).index_select(0, actions);
    let lp_old = theta_t.log_softmax(0, Kind::Double).index_select(0, actions).detach();
    let rewards = r.index_select(0, actions);
    rebel_loss(&lp_new, &lp_old, &rewards, eta)
}

#[test]
fn a_tabular_softmax_minimiser_is_mirror_descent_update() {
    let eta = 0.5;
    let theta_t = t(&[0.3, -0.2, 1.0, 0.0]);
    let r = t(&[1.0, -0.5, 2.0, 0.0]);
    let actions = Tensor::from_slice(&all_pairs(4));

    // exactly zero at theta_t + eta r, and at theta_t + eta r + c (per-context constant)
    let star = &theta_t + &r * eta;
    assert!(tabular_loss(&star, &theta_t, &r, &actions, eta).double_value(&[]) < 1e-24);
    assert!(tabular_loss(&(&star + 3.7), &theta_t, &r, &actions, eta).double_value(&[]) < 1e-24);
    let at_t = tabular_loss(&theta_t, &theta_t, &r, &actions, eta).double_value(&[]);
    assert!(at_t > 0.5, "the loss at theta_t must be positive, got {at_t}");

    // gradient descent from theta_t reaches pi_t exp(eta r) / Z
    let theta = theta_t.copy().set_requires_grad(true);
    for _ in 0..2000 {
        let loss = tabular_loss(&theta, &theta_t, &r, &actions, eta);
        let g = Tensor::run_backward(&[loss], &[&theta], false, false).remove(0);
        tch::no_grad(|| {
            let mut th = theta.shallow_clone();
            let _ = th.g_sub_(&(g * 0.02));
        });
    }
    let pi = theta.detach().softmax(0, Kind::Double);
    let target = theta_t.softmax(0, Kind::Double) * (&r * eta).exp();
    let target = &target / target.sum(Kind::Double);
    let err = max_abs(&(&pi - &target));
    assert!(err < 1e-10, "pi = {pi:?}, target = {target:?}, err {err}");
    assert!(tabular_loss(&theta.detach(), &theta_t, &r, &actions, eta).double_value(&[]) < 1e-20);
}

// ---------------------------------------------------------------------------------------------------------
// (b) gradient at theta_t on the MLP policy

#[test]
fn b_gradient_at_theta_t_is_relative_reward_policy_gradient() {
    tch::set_num_threads(1);
    let cfg = PolicyConfig { hidden: vec![16, 16], log_std_init: -0.5, ..PolicyConfig::new(3, 2) };
    let policy = GaussianPolicy::new(cfg, Device::Cpu, Kind::Double, 11);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (steps, n_traj) = (6i64, 8i64); // 4 pairs
    let obs = randn(&[steps, n_traj, 3], &mut rng);
    let act = policy.sample(&obs, &mut rng);
    let rewards = randn(&[n_traj], &mut rng) * 3.0;
    let eta = 0.7;

    let logp_old = policy.trajectory_log_prob(&obs, &act).detach();
    let logp_new = policy.trajectory_log_prob(&obs, &act);
    // At theta_t the log-ratio is exactly 0 (same numerical path).
    assert_eq!(max_abs(&(&logp_new - &logp_old)), 0.0);

    // closed form from per-trajectory gradients
    let g = per_sample_grads(&policy, &logp_new); // [8, P]
    let pairs = n_traj / 2;
    let g2 = g.view([pairs, 2, -1]);
    let dg = g2.select(1, 0) - g2.select(1, 1); // [4, P]
    let r2 = rewards.view([pairs, 2]);
    let dr = r2.select(1, 0) - r2.select(1, 1); // [4]
    let closed = (dg * dr.unsqueeze(1)).mean_dim([0i64].as_slice(), false, Kind::Double) * (-2.0 / eta);

    // autograd through the project's loss
    let loss = rebel_loss(&logp_new, &logp_old, &rewards, eta);
    let params = policy.parameters();
    let auto = Tensor::run_backward(&[loss], &params, true, false);
    let auto = Tensor::cat(&auto.iter().map(|x| x.reshape([-1])).collect::<Vec<_>>(), 0);
    let scale = max_abs(&closed);
    assert!(scale > 1e-3);
    let err = max_abs(&(&auto - &closed));
    assert!(err < 1e-12 * scale.max(1.0), "autograd vs closed form: max err {err}, scale {scale}");

    // and it is (4/eta) times the gradient of the RLOO(k=2) loss
    let rloo = rloo_loss(&logp_new, &rewards, 2);
    let rg = Tensor::run_backward(&[rloo], &params, false, false);
    let rg = Tensor::cat(&rg.iter().map(|x| x.reshape([-1])).collect::<Vec<_>>(), 0);
    let err = max_abs(&(&auto - rg * (4.0 / eta)));
    assert!(err < 1e-12 * scale.max(1.0), "rebel grad vs (4/eta)·rloo grad: max err {err}");
}

// ---------------------------------------------------------------------------------------------------------
// (c) Gauss–Newton step = natural policy gradient on a linear-Gaussian policy

#[test]
fn c_gauss_newton_step_is_natural_gradient() {
    tch::set_num_threads(1);
    // a ~ N(W x + c, sigma^2), 2-D state, 1-D action, one-step trajectories; r = -(a - k·x)^2 + CUBIC·a^3.
    const CUBIC: f64 = 0.3;
    let cfg = PolicyConfig { hidden: vec![], log_std_init: 0.0, ..PolicyConfig::new(2, 1) };
    let mut policy = GaussianPolicy::new(cfg, Device::Cpu, Kind::Double, 0);
    let (w, c, log_std) = ([0.5, -0.3], 0.1, -0.5f64);
    policy.set_flat_params(&t(&[w[0], w[1], c, log_std])).unwrap(); // order: weight [1,2], bias [1], log_std [1]
    let k = [1.0, 0.5];
    let sigma = log_std.exp();
    let eta = 0.3;

    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let pairs = 3000i64;
    let x = randn(&[pairs, 2], &mut rng);
    // both samples of a pair start from the same x: obs [2·pairs, 2] with rows 2i, 2i+1 equal
    let obs = x.unsqueeze(1).expand([pairs, 2, 2], false).reshape([2 * pairs, 2]);
    let act = policy.sample(&obs, &mut rng); // [2·pairs, 1], both from pi_t
    let kx = obs.matmul(&t(&k).view([2, 1])); // [2·pairs, 1]
    // A cubic term makes the reward not linear in (g − g'), so the regression has a residual and A⁺b differs
    // from F⁺∇J by Monte-Carlo error only (with a pure quadratic reward the two coincide sample by sample).
    let rewards = (-(&act - &kx).square() + act.pow_tensor_scalar(3) * CUBIC).view([2 * pairs]);

    let logp = policy.log_prob(&obs, &act); // [2·pairs]
    let logp_old = logp.detach();
    let g = per_sample_grads(&policy, &logp); // [2·pairs, 4]
    let p = g.size()[1];

    // Gauss–Newton: linearise the log-ratio at theta_t (logp_new = logp_old + g·delta) and take the Newton step
    // of the project's rebel_loss in delta (exact for the quadratic model), via autograd gradient and Hessian.
    let delta = Tensor::zeros([p], F64).set_requires_grad(true);
    let logp_lin = &logp_old + g.matmul(&delta);
    let loss = rebel_loss(&logp_lin, &logp_old, &rewards, eta);
    let grad = Tensor::run_backward(&[&loss], &[&delta], true, true).remove(0);
    let hess_rows: Vec<Tensor> =
        (0..p).map(|i| Tensor::run_backward(&[grad.get(i)], &[&delta], true, false).remove(0)).collect();
    let hess = Tensor::stack(&hess_rows, 0);
    let gn_step = -hess.linalg_pinv(1e-12, true).matmul(&grad.detach());

    // eta·A⁺b from the same samples
    let g2 = g.view([pairs, 2, p]);
    let dg = g2.select(1, 0) - g2.select(1, 1); // [pairs, P]
    let r2 = rewards.view([pairs, 2]);
    let dr = r2.select(1, 0) - r2.select(1, 1); // [pairs]
    let a_mat = dg.tr().matmul(&dg) / pairs as f64; // [P, P]
    let b_vec = (&dg * dr.unsqueeze(1)).mean_dim([0i64].as_slice(), false, Kind::Double); // [P]
    let eta_apinv_b = a_mat.linalg_pinv(1e-12, true).matmul(&b_vec) * eta;
    let err = max_abs(&(&gn_step - &eta_apinv_b));
    assert!(err < 1e-9 * max_abs(&eta_apinv_b), "GN step {gn_step:?} vs eta A+b {eta_apinv_b:?}");

    // Analytic F and ∇J over the sampled x (expectation over the actions only):
    // F = mean_x blockdiag(φφᵀ/σ², 2) with φ = [x1, x2, 1];
    // J(x) = −((μ − k·x)² + σ²) + CUBIC·(μ³ + 3μσ²), so
    // ∇J = mean_x [ (−2(μ − k·x) + 3·CUBIC·(μ² + σ²))·φ,  σ²·(−2 + 6·CUBIC·μ) ].
    let xs = Vec::<f64>::try_from(x.reshape([-1])).unwrap();
    let mut f = vec![0.0f64; 16];
    let mut grad_j = [0.0f64; 4];
    for i in 0..pairs as usize {
        let phi = [xs[2 * i], xs[2 * i + 1], 1.0];
        let mu = w[0] * phi[0] + w[1] * phi[1] + c;
        let err = mu - (k[0] * phi[0] + k[1] * phi[1]);
        for a in 0..3 {
            for b in 0..3 {
                f[a * 4 + b] += phi[a] * phi[b] / (sigma * sigma);
            }
            grad_j[a] += (-2.0 * err + 3.0 * CUBIC * (mu * mu + sigma * sigma)) * phi[a];
        }
        f[15] += 2.0;
        grad_j[3] += sigma * sigma * (-2.0 + 6.0 * CUBIC * mu);
    }
    let f = t(&f).view([4, 4]) / pairs as f64;
    let grad_j = t(&grad_j) / pairs as f64;

    let rel = |est: &Tensor, truth: &Tensor| {
        (est - truth).square().sum(Kind::Double).sqrt().double_value(&[])
            / truth.square().sum(Kind::Double).sqrt().double_value(&[])
    };
    let ra = rel(&a_mat, &(&f * 2.0));
    let rb = rel(&b_vec, &(&grad_j * 2.0));
    let npg = f.linalg_pinv(1e-12, true).matmul(&grad_j) * eta;
    let rd = rel(&gn_step, &npg);
    // Monte-Carlo tolerances for 3000 pairs (the errors scale as 1/sqrt(pairs)); a missing factor 2, a
    // correlated τ', or a wrong pairing would give errors of order 1.
    eprintln!("MC relative errors: A vs 2F {ra:.4}, b vs 2∇J {rb:.4}, GN vs NPG {rd:.4}");
    assert!(ra < 0.08, "A vs 2F: relative error {ra}");
    assert!(rb < 0.08, "b vs 2∇J: relative error {rb}");
    assert!(rd < 0.08, "GN step vs eta F⁺∇J: relative error {rd}");
    // The natural gradient differs from the plain one here, so the check has teeth.
    let plain = &grad_j * eta;
    assert!(rel(&plain, &npg) > 0.3);
}

// ---------------------------------------------------------------------------------------------------------
// Gaussian log-density and determinism

#[test]
fn gaussian_log_prob_matches_hand_computed_value() {
    // linear policy with W = 0, mean [0.5, -1], log_std [0, ln 2]; action [1.5, 1] → z = [1, 1]
    let cfg = PolicyConfig { hidden: vec![], log_std_init: 0.0, ..PolicyConfig::new(2, 2) };
    let mut p = GaussianPolicy::new(cfg, Device::Cpu, Kind::Double, 0);
    p.set_flat_params(&t(&[0.0, 0.0, 0.0, 0.0, 0.5, -1.0, 0.0, 2f64.ln()])).unwrap();
    let obs = t(&[0.7, -0.2]).view([1, 2]);
    let act = t(&[1.5, 1.0]).view([1, 2]);
    // −½·1 − 0 − ½ln2π  +  −½·1 − ln2 − ½ln2π  = −1 − ln 2 − ln 2π = −3.531024246969290
    let lp = p.log_prob(&obs, &act).double_value(&[0]);
    assert!((lp - (-3.531_024_246_969_29)).abs() < 1e-12, "{lp}");
    // entropy = 2·(½ + ½ ln 2π) + ln 2 = 3.531024246969290
    let h = p.entropy().double_value(&[]);
    assert!((h - 3.531_024_246_969_29).abs() < 1e-12, "{h}");
    // trajectory log-prob = sum over steps
    let obs_t = obs.unsqueeze(0).expand([3, 1, 2], false).contiguous();
    let act_t = act.unsqueeze(0).expand([3, 1, 2], false).contiguous();
    let tl = p.trajectory_log_prob(&obs_t, &act_t).double_value(&[0]);
    assert!((tl - 3.0 * lp).abs() < 1e-12);
    let mask = t(&[1.0, 1.0, 0.0]).view([3, 1]);
    let tm = (p.log_prob(&obs_t, &act_t) * &mask).sum(Kind::Double).double_value(&[]);
    assert!((tm - 2.0 * lp).abs() < 1e-12);
}

#[test]
fn log_prob_matches_empirical_sampling_moments() {
    // The sampled actions have the mean and std that log_prob assumes.
    let p = GaussianPolicy::new(PolicyConfig::new(3, 2), Device::Cpu, Kind::Double, 1);
    let obs = t(&[0.2, -0.1, 0.4]).view([1, 3]).expand([20000, 3], false).contiguous();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = p.sample(&obs, &mut rng);
    let mean = a.mean_dim([0i64].as_slice(), false, Kind::Double);
    let std = a.std_dim([0i64].as_slice(), true, false);
    let mu = p.mean(&obs.narrow(0, 0, 1)).squeeze_dim(0).detach();
    assert!(max_abs(&(mean - mu)) < 0.02);
    assert!(max_abs(&(std - (-0.5f64).exp())) < 0.02);
}

#[test]
fn same_seed_same_samples() {
    tch::set_num_threads(1);
    let p = GaussianPolicy::new(PolicyConfig::new(4, 3), Device::Cpu, Kind::Float, 42);
    let q = GaussianPolicy::new(PolicyConfig::new(4, 3), Device::Cpu, Kind::Float, 42);
    let obs = Tensor::from_slice(&[0.1f32, 0.2, -0.3, 0.4, 1.0, -1.0, 0.5, 0.0]).view([2, 4]);
    let a1 = p.sample(&obs, &mut ChaCha8Rng::seed_from_u64(7));
    let a2 = q.sample(&obs, &mut ChaCha8Rng::seed_from_u64(7));
    let a3 = p.sample(&obs, &mut ChaCha8Rng::seed_from_u64(8));
    assert!(a1.equal(&a2), "same policy seed and sampling seed must give identical actions");
    assert!(!a1.equal(&a3), "a different sampling seed must give different actions");
    // the samples are unclipped: with a large std, some leave [-1, 1]
    let wide = PolicyConfig { log_std_init: 1.0, ..PolicyConfig::new(4, 3) };
    let w = GaussianPolicy::new(wide, Device::Cpu, Kind::Float, 42);
    let big = obs.get(0).unsqueeze(0).expand([200, 4], false).contiguous();
    let a = w.sample(&big, &mut ChaCha8Rng::seed_from_u64(1));
    assert!(max_abs(&a) > 1.0);
}
