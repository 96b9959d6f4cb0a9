//! Losses of REBEL and its baselines as pure functions of tensors (rebel.md §1 and §4).
//!
//! Every function takes 1-D tensors of equal length unless stated, returns a scalar (0-dim) tensor that carries
//! gradients from its inputs, and works for any float kind and device. Shape mismatches are programming errors
//! and panic with a message naming the shapes.

use tch::{Kind, Tensor};

fn check_1d_same(name: &str, tensors: &[(&str, &Tensor)]) -> i64 {
    let n = tensors[0].1.size();
    assert!(n.len() == 1, "{name}: `{}` must be 1-D, got shape {:?}", tensors[0].0, n);
    for (arg, t) in tensors {
        assert!(
            t.size() == n,
            "{name}: `{arg}` has shape {:?}, expected {:?} (like `{}`)",
            t.size(),
            n,
            tensors[0].0
        );
    }
    n[0]
}

/// REBEL's relative-reward regression loss with pairs stored adjacently: samples `2i` and `2i+1` share the same
/// start state x. `logp_new [2B]` = ln pi_theta(tau), `logp_old [2B]` = ln pi_t(tau) (fixed, computed once after
/// sampling), `rewards [2B]` → scalar
///
/// `mean_i ( (1/eta)·[(lpn_a − lpo_a) − (lpn_b − lpo_b)] − (r_a − r_b) )²`.
///
/// Equal to [`rebel_loss_grouped`] with `k = 2`.
pub fn rebel_loss(logp_new: &Tensor, logp_old: &Tensor, rewards: &Tensor, eta: f64) -> Tensor {
    rebel_loss_grouped(logp_new, logp_old, rewards, eta, 2)
}

/// REBEL's loss with `k ≥ 2` samples per start state stored consecutively (group g = samples `g·k .. g·k+k`),
/// regressing over every unordered pair within each group: `[G·k]` ×3 → scalar
///
/// `mean over groups and pairs i<j of ( (1/eta)·[(lpn_i − lpo_i) − (lpn_j − lpo_j)] − (r_i − r_j) )²`.
pub fn rebel_loss_grouped(logp_new: &Tensor, logp_old: &Tensor, rewards: &Tensor, eta: f64, k: i64) -> Tensor {
    let n = check_1d_same(
        "rebel_loss",
        &[("logp_new", logp_new), ("logp_old", logp_old), ("rewards", rewards)],
    );
    assert!(k >= 2, "rebel_loss: k must be ≥ 2, got {k}");
    assert!(eta > 0.0, "rebel_loss: eta must be > 0, got {eta}");
    assert!(n > 0 && n % k == 0, "rebel_loss: length {n} is not a positive multiple of the group size {k}");
    let g = n / k;
    // x_i = logratio_i / eta − r_i; the residual of a pair is x_i − x_j.
    let x = ((logp_new - logp_old) / eta - rewards).view([g, k]);
    let d = x.unsqueeze(2) - x.unsqueeze(1); // [G, k, k], antisymmetric, zero diagonal
    // Σ_{i≠j} d² = 2 Σ_{i<j} d²; there are G·k(k−1)/2 unordered pairs.
    d.square().sum(d.kind()) / ((g * k * (k - 1)) as f64)
}

/// PPO's clipped surrogate (to minimise): `logp_new [N], logp_old [N], adv [N]` → scalar
/// `−mean( min(ρ·A, clip(ρ, 1−ε, 1+ε)·A) )` with `ρ = exp(logp_new − logp_old)`, `ε = clip`.
pub fn ppo_clip_loss(logp_new: &Tensor, logp_old: &Tensor, adv: &Tensor, clip: f64) -> Tensor {
    check_1d_same("ppo_clip_loss", &[("logp_new", logp_new), ("logp_old", logp_old), ("adv", adv)]);
    let ratio = (logp_new - logp_old).exp();
    let unclipped = &ratio * adv;
    let clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * adv;
    -unclipped.minimum(&clipped).mean(unclipped.kind())
}

/// Diagnostics of a PPO update (no gradient): `logp_new [N], logp_old [N]` → `(approx_kl, clip_fraction)`,
/// where `approx_kl = mean((ρ − 1) − ln ρ)` (Schulman's low-variance k3 estimator) and `clip_fraction` is the
/// share of samples with `|ρ − 1| > clip`.
pub fn ppo_diagnostics(logp_new: &Tensor, logp_old: &Tensor, clip: f64) -> (f64, f64) {
    check_1d_same("ppo_diagnostics", &[("logp_new", logp_new), ("logp_old", logp_old)]);
    tch::no_grad(|| {
        let log_ratio = (logp_new - logp_old).to_kind(Kind::Double);
        let ratio = log_ratio.exp();
        let kl = ((&ratio - 1.0) - &log_ratio).mean(Kind::Double).double_value(&[]);
        let frac = (ratio - 1.0).abs().gt(clip).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        (kl, frac)
    })
}

/// Schulman's k3 estimate of KL per masked step (no gradient): `rho [S, L]` = ln π_new − ln π_old per step
/// (0 where `mask [S, L]` is 0) → `Σ mask·((e^ρ − 1) − ρ) / Σ mask`.
pub fn k3_kl(rho: &Tensor, mask: &Tensor) -> f64 {
    tch::no_grad(|| {
        let kl = ((rho.exp() - 1.0) - rho) * mask;
        f64::try_from(kl.sum(Kind::Float) / mask.sum(Kind::Float)).unwrap_or(f64::NAN)
    })
}

/// Value regression loss: `values [N], returns [N]` → scalar `½·mean((V − R)²)`. With `clip = Some((old_values
/// [N], ε))`, the PPO2 clipped form `½·mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²))`.
pub fn value_loss(values: &Tensor, returns: &Tensor, clip: Option<(&Tensor, f64)>) -> Tensor {
    check_1d_same("value_loss", &[("values", values), ("returns", returns)]);
    let unclipped = (values - returns).square();
    match clip {
        None => unclipped.mean(unclipped.kind()) * 0.5,
        Some((old, eps)) => {
            check_1d_same("value_loss", &[("values", values), ("old_values", old)]);
            let v_clipped = old + (values - old).clamp(-eps, eps);
            let clipped = (v_clipped - returns).square();
            unclipped.maximum(&clipped).mean(unclipped.kind()) * 0.5
        }
    }
}

/// Generalised advantage estimation with terminations and truncations kept apart.
///
/// Shapes: all inputs `[T, N]` (T steps of N parallel environments), outputs `(advantages [T, N],
/// returns [T, N])` with `returns = advantages + values`, detached, of the kind and device of `rewards`.
/// * `values[t]` = V(s_t), the observation the action of step t was taken in;
/// * `next_values[t]` = V(s_{t+1}) of the TRUE next observation of step t: the next row's observation inside an
///   episode, the final observation of the episode at a truncation (not the reset observation), and V of the
///   observation after the last step for row T−1. Ignored where `terminated[t]`;
/// * `terminated[t]`, `truncated[t]`: 1.0/0.0 (or bool) flags of step t.
///
/// `δ_t = r_t + γ·(1 − term_t)·next_values_t − values_t`,
/// `A_t = δ_t + γλ·(1 − (term_t ∨ trunc_t))·A_{t+1}`, `A_T = 0`.
///
/// A termination bootstraps nothing; a truncation bootstraps with the value of the final observation, and
/// neither lets the advantage of the next episode leak back.
pub fn gae(
    rewards: &Tensor,
    values: &Tensor,
    next_values: &Tensor,
    terminated: &Tensor,
    truncated: &Tensor,
    gamma: f64,
    lambda: f64,
) -> (Tensor, Tensor) {
    let shape = rewards.size();
    assert!(shape.len() == 2, "gae: rewards must be [T, N], got {shape:?}");
    for (name, t) in [
        ("values", values),
        ("next_values", next_values),
        ("terminated", terminated),
        ("truncated", truncated),
    ] {
        assert!(t.size() == shape, "gae: `{name}` has shape {:?}, expected {shape:?}", t.size());
    }
    let (t_len, n) = (shape[0] as usize, shape[1] as usize);
    let to_vec = |t: &Tensor| -> Vec<f64> {
        Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).to_device(tch::Device::Cpu).reshape([-1]))
            .expect("a 1-D double tensor converts to Vec<f64>")
    };
    let (r, v, nv, term, trunc) =
        (to_vec(rewards), to_vec(values), to_vec(next_values), to_vec(terminated), to_vec(truncated));
    let mut adv = vec![0.0f64; t_len * n];
    for j in 0..n {
        let mut next_adv = 0.0;
        for t in (0..t_len).rev() {
            let i = t * n + j;
            let nonterminal = if term[i] != 0.0 { 0.0 } else { 1.0 };
            let cont = if term[i] != 0.0 || trunc[i] != 0.0 { 0.0 } else { 1.0 };
            let delta = r[i] + gamma * nonterminal * nv[i] - v[i];
            next_adv = delta + gamma * lambda * cont * next_adv;
            adv[i] = next_adv;
        }
    }
    let ret: Vec<f64> = adv.iter().zip(&v).map(|(a, v)| a + v).collect();
    let opts = (rewards.kind(), rewards.device());
    let mk = |x: &[f64]| Tensor::from_slice(x).view([t_len as i64, n as i64]).to_kind(opts.0).to_device(opts.1);
    (mk(&adv), mk(&ret))
}

/// REINFORCE with a scalar baseline: `traj_logp [B]` (ln pi_theta(tau), summed over steps), `returns [B]` →
/// scalar `−mean((R − b)·ln pi_theta(tau))`. The returns are treated as constants.
pub fn reinforce_loss(traj_logp: &Tensor, returns: &Tensor, baseline: f64) -> Tensor {
    check_1d_same("reinforce_loss", &[("traj_logp", traj_logp), ("returns", returns)]);
    let w = returns.detach() - baseline;
    -(w * traj_logp).mean(traj_logp.kind())
}

/// RLOO(k): `k ≥ 2` samples per start state stored consecutively; the baseline of each sample is the mean return
/// of the other k−1 of its group. `traj_logp [G·k], returns [G·k]` → scalar `−mean((R_i − b_i)·ln pi(tau_i))`,
/// `b_i = (Σ_group R − R_i)/(k − 1)`.
pub fn rloo_loss(traj_logp: &Tensor, returns: &Tensor, k: i64) -> Tensor {
    let n = check_1d_same("rloo_loss", &[("traj_logp", traj_logp), ("returns", returns)]);
    assert!(k >= 2, "rloo_loss: k must be ≥ 2, got {k}");
    assert!(n > 0 && n % k == 0, "rloo_loss: length {n} is not a positive multiple of k = {k}");
    let r = returns.detach().view([n / k, k]);
    let sum = r.sum_dim_intlist([1i64].as_slice(), true, r.kind());
    let baseline = (sum - &r) / ((k - 1) as f64);
    let w = (r - baseline).view([n]);
    -(w * traj_logp).mean(traj_logp.kind())
}

/// `h = (lp_w − ref_w) − (lp_l − ref_l)`: the DPO implicit-reward margin, `[B]`.
fn dpo_margin(lp_w: &Tensor, lp_l: &Tensor, ref_w: &Tensor, ref_l: &Tensor) -> Tensor {
    check_1d_same("dpo_loss", &[("lp_w", lp_w), ("lp_l", lp_l), ("ref_w", ref_w), ("ref_l", ref_l)]);
    (lp_w - ref_w.detach()) - (lp_l - ref_l.detach())
}

/// DPO's logistic loss: trajectory log-probs of the preferred (`w`) and dispreferred (`l`) trajectories under the
/// policy (`lp_*`) and the fixed reference (`ref_*`), all `[B]` → scalar `mean(−ln σ(beta·h))` with
/// `h = (lp_w − ref_w) − (lp_l − ref_l)`.
pub fn dpo_logistic_loss(lp_w: &Tensor, lp_l: &Tensor, ref_w: &Tensor, ref_l: &Tensor, beta: f64) -> Tensor {
    let h = dpo_margin(lp_w, lp_l, ref_w, ref_l);
    -(h * beta).log_sigmoid().mean(lp_w.kind())
}

/// The square variant of DPO (the course assignment's): same inputs, `[B]` ×4 → scalar `mean((beta·h − z)²)`.
pub fn dpo_square_loss(
    lp_w: &Tensor,
    lp_l: &Tensor,
    ref_w: &Tensor,
    ref_l: &Tensor,
    beta: f64,
    z: f64,
) -> Tensor {
    let h = dpo_margin(lp_w, lp_l, ref_w, ref_l);
    (h * beta - z).square().mean(lp_w.kind())
}

/// Bradley–Terry cross-entropy for a reward model (Christiano et al. 2017): summed segment scores
/// `score_a [B], score_b [B]`, `label [B]` = 1 when a is preferred, 0 when b is, 0.5 for a tie → scalar
/// `−mean(label·ln p + (1 − label)·ln(1 − p))`, where `p = (1 − eps)·σ(sa − sb) + eps/2` (`eps` = the assumed
/// probability of a random answer; Christiano uses 0.1, `0.0` gives the plain logistic model). Computed in log
/// space, stable for large score differences.
pub fn bradley_terry_loss(score_a: &Tensor, score_b: &Tensor, label: &Tensor, eps_random: f64) -> Tensor {
    check_1d_same("bradley_terry_loss", &[("score_a", score_a), ("score_b", score_b), ("label", label)]);
    assert!((0.0..1.0).contains(&eps_random), "bradley_terry_loss: eps_random must be in [0, 1), got {eps_random}");
    let d = score_a - score_b;
    let (mut ln_p, mut ln_q) = (d.log_sigmoid(), (-&d).log_sigmoid());
    if eps_random > 0.0 {
        let ln_half_eps = (eps_random / 2.0).ln();
        let ln_keep = (1.0 - eps_random).ln();
        let floor = d.full_like(ln_half_eps);
        ln_p = (ln_p + ln_keep).logaddexp(&floor);
        ln_q = (ln_q + ln_keep).logaddexp(&floor);
    }
    let y = label.to_kind(d.kind());
    let pos: Tensor = &y * ln_p;
    let neg: Tensor = (-&y + 1.0) * ln_q;
    -(pos + neg).mean(d.kind())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(x: &[f64]) -> Tensor {
        Tensor::from_slice(x)
    }
    fn val(x: &Tensor) -> f64 {
        x.double_value(&[])
    }
    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn rebel_loss_hand_worked() {
        // pair 1: ratios 0.5 and -0.5, eta 2 → (0.25 + 0.25) - (3 - 1) = -1.5 → 2.25
        // pair 2: ratios 0 and 1 → (0 - 0.5) - (0 - 0) = -0.5 → 0.25;   mean = 1.25
        let lpn = t(&[1.0, -1.0, 2.0, 3.0]);
        let lpo = t(&[0.5, -0.5, 2.0, 2.0]);
        let r = t(&[3.0, 1.0, 0.0, 0.0]);
        close(val(&rebel_loss(&lpn, &lpo, &r, 2.0)), 1.25);
        // zero at theta = theta_t with equal rewards; (r_a - r_b)^2 with equal log-probs
        close(val(&rebel_loss(&lpo, &lpo, &t(&[1.0, 1.0, 2.0, 2.0]), 1.0)), 0.0);
        close(val(&rebel_loss(&lpo, &lpo, &r, 1.0)), (4.0 + 0.0) / 2.0);
    }

    #[test]
    fn rebel_loss_grouped_k3_hand_worked() {
        // one group, logp_new = logp_old: x = -r = [-1, -2, -4]; pairs (1,2)=1, (1,3)=9, (2,3)=4 → mean 14/3
        let z = t(&[0.0, 0.0, 0.0]);
        close(val(&rebel_loss_grouped(&z, &z, &t(&[1.0, 2.0, 4.0]), 1.0, 3)), 14.0 / 3.0);
    }

    #[test]
    #[should_panic(expected = "multiple of the group size")]
    fn rebel_loss_odd_length_panics_with_message() {
        let z = t(&[0.0, 0.0, 0.0]);
        let _ = rebel_loss(&z, &z, &z, 1.0);
    }

    #[test]
    fn ppo_clip_hand_worked() {
        // ratios e^0 = 1, e^{ln 1.5} = 1.5, e^{ln 0.5} = 0.5; adv 1, 1, -1; clip 0.2
        // terms: min(1,1)=1; min(1.5, 1.2)=1.2; min(-0.5, -0.8)=-0.8 → loss = -(1 + 1.2 - 0.8)/3
        let lpn = t(&[0.0, 1.5f64.ln(), 0.5f64.ln()]);
        let lpo = t(&[0.0, 0.0, 0.0]);
        let adv = t(&[1.0, 1.0, -1.0]);
        close(val(&ppo_clip_loss(&lpn, &lpo, &adv, 0.2)), -1.4 / 3.0);
        let (kl, frac) = ppo_diagnostics(&lpn, &lpo, 0.2);
        close(frac, 2.0 / 3.0);
        close(kl, ((0.5 - 1.5f64.ln()) + (-0.5 - 0.5f64.ln())) / 3.0);
    }

    #[test]
    fn value_loss_hand_worked() {
        let v = t(&[1.0, 2.0]);
        let r = t(&[0.0, 4.0]);
        close(val(&value_loss(&v, &r, None)), 0.5 * (1.0 + 4.0) / 2.0);
        // clipped: old = [0, 0], eps 0.5 → v_clipped = [0.5, 0.5]; (0.5-0)^2=0.25 vs 1 → 1; (0.5-4)^2=12.25 vs 4
        let old = t(&[0.0, 0.0]);
        close(val(&value_loss(&v, &r, Some((&old, 0.5)))), 0.5 * (1.0 + 12.25) / 2.0);
    }

    #[test]
    fn gae_hand_worked_with_termination_and_truncation() {
        // One env, 4 steps: step 1 truncates (final-obs value 10), step 3 terminates.
        let r = t(&[1.0, 1.0, 1.0, 1.0]).view([4, 1]);
        let v = t(&[0.5, 0.5, 0.5, 0.5]).view([4, 1]);
        let nv = t(&[0.5, 10.0, 0.5, 99.0]).view([4, 1]);
        let term = t(&[0.0, 0.0, 0.0, 1.0]).view([4, 1]);
        let trunc = t(&[0.0, 1.0, 0.0, 0.0]).view([4, 1]);
        let (g, l) = (0.9, 0.5);
        let (adv, ret) = gae(&r, &v, &nv, &term, &trunc, g, l);
        // t=3: δ = 1 - 0.5 = 0.5 (no bootstrap); A3 = 0.5
        // t=2: δ = 1 + 0.9*0.5 - 0.5 = 0.95; A2 = 0.95 + 0.45*0.5 = 1.175
        // t=1: δ = 1 + 0.9*10 - 0.5 = 9.5; truncation cuts the trace: A1 = 9.5
        // t=0: δ = 0.95; A0 = 0.95 + 0.45*9.5 = 5.225
        let expect = [5.225, 9.5, 1.175, 0.5];
        for (i, e) in expect.iter().enumerate() {
            close(adv.double_value(&[i as i64, 0]), *e);
            close(ret.double_value(&[i as i64, 0]), e + 0.5);
        }
        assert_eq!(adv.size(), vec![4, 1]);
    }

    #[test]
    fn gae_lambda_one_no_dones_is_discounted_return_minus_value() {
        let r = t(&[1.0, 2.0, 3.0]).view([3, 1]);
        let v = t(&[0.0, 0.0, 0.0]).view([3, 1]);
        let nv = t(&[0.0, 0.0, 4.0]).view([3, 1]);
        let z = t(&[0.0, 0.0, 0.0]).view([3, 1]);
        let (adv, _) = gae(&r, &v, &nv, &z, &z, 0.5, 1.0);
        close(adv.double_value(&[0, 0]), 1.0 + 0.5 * 2.0 + 0.25 * 3.0 + 0.125 * 4.0);
    }

    #[test]
    fn reinforce_and_rloo_hand_worked() {
        let lp = t(&[-1.0, -2.0, -3.0, -4.0]);
        let ret = t(&[1.0, 3.0, 2.0, 2.0]);
        // baseline 2: weights -1, 1, 0, 0 → -mean(1 - 2 + 0 + 0) = 0.25
        close(val(&reinforce_loss(&lp, &ret, 2.0)), 0.25);
        // k=2: baselines are the partner: weights -2, 2, 0, 0 → -mean(2 - 4) = 0.5
        close(val(&rloo_loss(&lp, &ret, 2)), 0.5);
        // k=4: baselines (8 - R)/3 = [7/3, 5/3, 2, 2]; weights [-4/3, 4/3, 0, 0] → -mean(4/3 - 8/3) = 1/3
        close(val(&rloo_loss(&lp, &ret, 4)), 1.0 / 3.0);
    }

    #[test]
    fn dpo_hand_worked() {
        let lp_w = t(&[-1.0, -2.0]);
        let lp_l = t(&[-3.0, -1.0]);
        let ref_w = t(&[-2.0, -2.0]);
        let ref_l = t(&[-2.0, -2.0]);
        // h = (1) - (-1) = 2 ; h = 0 - 1 = -1 ; beta = 0.5 → beta h = 1, -0.5
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let expect = -(sig(1.0).ln() + sig(-0.5).ln()) / 2.0;
        close(val(&dpo_logistic_loss(&lp_w, &lp_l, &ref_w, &ref_l, 0.5)), expect);
        // square: ((1 - 1)^2 + (-0.5 - 1)^2) / 2 = 1.125
        close(val(&dpo_square_loss(&lp_w, &lp_l, &ref_w, &ref_l, 0.5, 1.0)), 1.125);
    }

    #[test]
    fn bradley_terry_hand_worked() {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let a = t(&[2.0, 0.0, 1.0]);
        let b = t(&[1.0, 0.0, 3.0]);
        let y = t(&[1.0, 0.5, 0.0]);
        // d = 1, 0, -2
        let e0 = -(sig(1.0).ln() + 0.5f64.ln() + (1.0 - sig(-2.0)).ln()) / 3.0;
        close(val(&bradley_terry_loss(&a, &b, &y, 0.0)), e0);
        let p = |d: f64| 0.9 * sig(d) + 0.05;
        let e1 = -(p(1.0).ln() + (0.5 * p(0.0).ln() + 0.5 * (1.0 - p(0.0)).ln()) + (1.0 - p(-2.0)).ln()) / 3.0;
        close(val(&bradley_terry_loss(&a, &b, &y, 0.1)), e1);
        // with eps the loss stays bounded when a confident model is wrong: -ln(0.05) at most
        let huge = bradley_terry_loss(&t(&[0.0]), &t(&[1000.0]), &t(&[1.0]), 0.1);
        close(val(&huge), -(0.05f64.ln()));
    }

    #[test]
    fn losses_carry_gradients() {
        let lpn = t(&[1.0, 2.0]).set_requires_grad(true);
        let loss = rebel_loss(&lpn, &t(&[0.0, 0.0]), &t(&[0.0, 0.0]), 1.0);
        loss.backward();
        // d/dlpn_a (lpn_a - lpn_b)^2 = 2*(1-2) = -2, and +2 for b
        let g = lpn.grad();
        close(g.double_value(&[0]), -2.0);
        close(g.double_value(&[1]), 2.0);
    }
}
