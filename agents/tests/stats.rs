//! The comparison statistics on samples whose answers are known.

use rebel_agents::stats::{
    avg_prob_improvement, bootstrap, bootstrap_two, curve_bands, fraction_reaching, iqm, mean, pooled,
    prob_improvement, Bootstrap,
};

fn b(reps: usize, size: f64, seed: u64) -> Bootstrap {
    Bootstrap { reps, size, seed }
}

#[test]
fn iqm_is_scipys_trim_mean_at_a_quarter() {
    assert_eq!(iqm(&[8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]), 4.5);
    assert_eq!(iqm(&[1.0, 2.0, 3.0, 4.0, 100.0]), 3.0);
    assert_eq!(iqm(&[1.0, 2.0, 3.0]), 2.0);
    assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0, 100.0]), 22.0);
}

#[test]
fn probability_of_improvement_counts_ties_half() {
    assert_eq!(prob_improvement(&[3.0, 4.0], &[1.0, 3.0]), 0.875);
    assert_eq!(prob_improvement(&[1.0, 2.0], &[1.0, 2.0]), 0.5);
    assert_eq!(prob_improvement(&[0.0], &[1.0]), 0.0);
    assert_eq!(avg_prob_improvement(&[vec![1.0], vec![0.0]], &[vec![0.0], vec![1.0]]), 0.5);
    assert_eq!(fraction_reaching(&[100.0, 250.0, 330.0, 400.0], 250.0), 0.75);
}

#[test]
fn bootstrap_of_the_mean_of_0_0_3_has_its_exact_percentiles() {
    // A resample's mean is K, K ~ Binomial(3, 1/3): P(K <= 0) = 8/27, P(K <= 1) = 20/27, P(K <= 2) = 26/27.
    // So the 2.5th and 5th percentiles are 0, the 95th is 2 and the 97.5th is 3.
    let s = [vec![0.0, 0.0, 3.0]];
    let i95 = bootstrap(&s, |x| mean(&x[0]), b(50_000, 0.95, 1));
    assert_eq!((i95.point, i95.lo, i95.hi), (1.0, 0.0, 3.0));
    let i90 = bootstrap(&s, |x| mean(&x[0]), b(50_000, 0.90, 1));
    assert_eq!((i90.lo, i90.hi), (0.0, 2.0));
}

#[test]
fn bootstrap_of_a_large_sample_matches_the_normal_interval() {
    // 200 zeros and 200 ones: the mean's standard error is 0.025, so the 95% interval is 0.5 -/+ 0.049.
    let s = [(0..400).map(|i| (i % 2) as f64).collect::<Vec<f64>>()];
    let i = bootstrap(&s, |x| mean(&x[0]), b(20_000, 0.95, 7));
    assert!((i.lo - 0.451).abs() < 0.006 && (i.hi - 0.549).abs() < 0.006, "{i:?}");
    // The same seed gives the same interval; another seed a slightly different one.
    assert_eq!(i, bootstrap(&s, |x| mean(&x[0]), b(20_000, 0.95, 7)));
    assert_ne!(i, bootstrap(&s, |x| mean(&x[0]), b(20_000, 0.95, 8)));
}

#[test]
fn stratified_resampling_keeps_each_stratum_apart() {
    // Two tasks whose runs are constant within the task: every stratified resample has the same pooled mean,
    // so the interval collapses to the point (an unstratified bootstrap of the pooled runs would not).
    let s = [vec![0.0; 5], vec![10.0; 5]];
    let i = bootstrap(&s, |x| mean(&pooled(x)), b(5_000, 0.95, 3));
    assert_eq!((i.point, i.lo, i.hi), (5.0, 5.0, 5.0));
}

#[test]
fn probability_of_improvement_interval_for_separated_and_equal_samples() {
    let hi = [vec![5.0, 6.0, 7.0]];
    let lo = [vec![1.0, 2.0, 3.0]];
    let i = bootstrap_two(&hi, &lo, avg_prob_improvement, b(2_000, 0.95, 0));
    assert_eq!((i.point, i.lo, i.hi), (1.0, 1.0, 1.0));
    let x = [vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]];
    let j = bootstrap_two(&x, &x, avg_prob_improvement, b(5_000, 0.95, 0));
    assert_eq!(j.point, 0.5);
    assert!(j.lo < 0.5 && j.hi > 0.5 && j.lo > 0.1 && j.hi < 0.9, "{j:?}");
}

#[test]
fn curve_bands_give_one_interval_per_point() {
    let curves = vec![vec![0.0, 1.0, 4.0], vec![0.0, 3.0, 4.0], vec![0.0, 2.0, 4.0, 9.0]];
    let bands = curve_bands(&curves, mean, b(2_000, 0.95, 0));
    assert_eq!(bands.len(), 3, "points every run reached");
    assert_eq!((bands[0].lo, bands[0].hi), (0.0, 0.0));
    assert_eq!(bands[1].point, 2.0);
    assert!(bands[1].lo >= 1.0 && bands[1].lo < 2.0 && bands[1].hi > 2.0 && bands[1].hi <= 3.0);
    assert_eq!((bands[2].lo, bands[2].point, bands[2].hi), (4.0, 4.0, 4.0));
}
