//! Every random number of a run, derived from the run's master seed.
//!
//! ## Generators
//! [`stream`] returns a [`ChaCha8Rng`] (crate `rand_chacha`) keyed by the master seed
//! (`ChaCha8Rng::seed_from_u64(seed)`) on the 64-bit ChaCha stream (nonce)
//! `domain << 56 | index`, where `domain` is a [`Domain`] tag and `index` (< 2^56) numbers the streams of
//! that domain (e.g. the iteration). ChaCha8's output is fixed by the algorithm, not by a `rand` version
//! (unlike `StdRng`'s), so a resumed run, or a run on another build, draws the same numbers.
//! Two different `(domain, index)` pairs are two different ChaCha streams of the same key: they never share
//! a block, so training, evaluation and tuning randomness are disjoint by construction.
//!
//! | domain              | index                         | used for |
//! |---------------------|-------------------------------|----------|
//! | [`Domain::Init`]    | 0 policy, 1 value net         | network initialisation |
//! | [`Domain::Train`]   | `rank << 40 \| iteration` ([`train_stream`]) | actions, minibatch order of one training iteration (rank 0 of a data-parallel run, or the only process: the iteration) |
//! | [`Domain::Eval`]    | 0                             | stochastic evaluation actions |
//! | [`Domain::Tune`]    | trial                         | hyper-parameter search (`pretrain`) |
//! | [`Domain::Preferences`] | 1 teacher, 2 pairing, 3 uniform query choice, 1000 + round | preference collection (a query round's master seed: [`query_round_seed`]) |
//! | [`Domain::RewardModel`] | 1 split, 100 + m init, 200 + m training of member m | reward-net ensemble |
//!
//! ## Environment reset seeds
//! Environments are reset with plain `u64` seeds. [`env_seed`] puts the domain tag in the top 4 bits and a
//! SplitMix64 hash of `(seed, index)` in the low 60: training episodes (tag [`Domain::Train`]), preference
//! collection ([`Domain::Preferences`]) and evaluation ([`eval_env_seed`], tag [`Domain::Eval`] over
//! `seed_base + i`) can therefore never reset an environment with the same seed.

use rand::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

/// What a random stream is for. The discriminant is the tag in the stream number and in env seeds (4 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Domain {
    /// Network initialisation.
    Init = 1,
    /// Training: rollouts and updates.
    Train = 2,
    /// Evaluation.
    Eval = 3,
    /// Hyper-parameter tuning.
    Tune = 4,
    /// Preference collection (teacher, pairing, rollouts).
    Preferences = 5,
    /// Reward-model training.
    RewardModel = 6,
}

/// Bits of a stream number left for the index.
const INDEX_BITS: u32 = 56;
/// Bits of an env seed left for the hash / value.
const ENV_BITS: u32 = 60;

/// The generator of stream `index` of `domain` under the master `seed` (module docs). Panics if `index` ≥ 2^56
/// (it would spill into the domain tag).
pub fn stream(seed: u64, domain: Domain, index: u64) -> ChaCha8Rng {
    assert!(index < 1 << INDEX_BITS, "random stream index {index} is too large (must be < 2^56)");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((domain as u64) << INDEX_BITS) | index);
    rng
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn tagged(domain: Domain, value: u64) -> u64 {
    ((domain as u64) << ENV_BITS) | (value & ((1 << ENV_BITS) - 1))
}

/// Chained hash: `h` absorbs `v` (not symmetric, so `(a, b)` and `(b, a)` give different values).
fn absorb(h: u64, v: u64) -> u64 {
    splitmix(h ^ v)
}

/// Reset seed of environment episode `index` of `domain` under the master `seed`: tag in the top 4 bits,
/// a hash of `(seed, domain, index)` below (module docs).
pub fn env_seed(seed: u64, domain: Domain, index: u64) -> u64 {
    tagged(domain, absorb(absorb(splitmix(seed), domain as u64), index))
}

/// The training stream of `iteration` on `rank` of a data-parallel run: index `rank << 40 | iteration`, so rank 0
/// (and a one-process run) draws what it always drew and the ranks' action noise never overlaps. Panics past
/// 2^40 iterations or 2^16 ranks.
pub fn train_stream(seed: u64, rank: usize, iteration: u64) -> ChaCha8Rng {
    assert!(iteration < 1 << 40 && rank < 1 << 16, "training stream of iteration {iteration} on rank {rank} is out of range");
    stream(seed, Domain::Train, ((rank as u64) << 40) | iteration)
}

/// Reset seed of training episode `group` of `iteration` (tag [`Domain::Train`]).
pub fn train_env_seed(seed: u64, iteration: u64, group: u64) -> u64 {
    tagged(Domain::Train, absorb(absorb(absorb(splitmix(seed), Domain::Train as u64), iteration), group))
}

/// Reset seed of evaluation episode `i` (tag [`Domain::Eval`] over `seed_base + i`): the same episodes for
/// every run and every algorithm, whatever its master seed.
pub fn eval_env_seed(seed_base: u64, i: u64) -> u64 {
    tagged(Domain::Eval, seed_base.wrapping_add(i))
}

/// Master seed of round `round` of active querying under the experiment's `label_seed`: a hash, so the rounds of
/// one experiment and of experiments with other label seeds (`label_seed`, and the reward net's check on
/// `label_seed + 1`) draw unrelated pieces.
pub fn query_round_seed(label_seed: u64, round: u64) -> u64 {
    absorb(absorb(splitmix(label_seed), 0x5155_4552_59), round) // "QUERY"
}

/// The domain tag of an env seed made by this module.
pub fn env_seed_domain(env_seed: u64) -> u64 {
    env_seed >> ENV_BITS
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;
    use std::collections::HashSet;

    const PINNED: [u64; 4] = [7875952635008868715, 2351465460069165985, 2263682170972899099, 7693997738908735118];
    const PINNED_ENV_SEED: u64 = 2695744477447931420;

    fn draw(mut r: ChaCha8Rng) -> Vec<u64> {
        (0..4).map(|_| r.random::<u64>()).collect()
    }

    #[test]
    fn same_inputs_same_numbers_and_fixed_values() {
        assert_eq!(draw(stream(7, Domain::Train, 3)), draw(stream(7, Domain::Train, 3)));
        // pinned, so that a dependency update that changed the values fails here, not silently in a resumed run
        assert_eq!(draw(stream(1, Domain::Train, 0)), PINNED);
        assert_eq!(draw(train_stream(7, 0, 3)), draw(stream(7, Domain::Train, 3)), "rank 0 draws the one-process stream");
        assert_ne!(draw(train_stream(7, 1, 3)), draw(train_stream(7, 0, 3)));
        assert_eq!(train_env_seed(1, 0, 0), PINNED_ENV_SEED);
    }

    #[test]
    fn domains_and_indices_give_different_streams() {
        let mut seen = HashSet::new();
        for d in [Domain::Init, Domain::Train, Domain::Eval, Domain::Tune, Domain::Preferences, Domain::RewardModel] {
            for i in [0u64, 1, 2, 1000, (1 << 56) - 1] {
                let s = stream(1, d, i);
                assert_eq!(s.get_stream(), ((d as u64) << 56) | i);
                assert!(seen.insert(draw(s)), "{d:?} {i} repeats another stream");
            }
        }
    }

    #[test]
    #[should_panic(expected = "too large")]
    fn index_may_not_reach_the_tag() {
        let _ = stream(1, Domain::Train, 1 << 56);
    }

    #[test]
    fn train_eval_and_preference_env_seeds_are_disjoint() {
        let mut train = HashSet::new();
        for seed in [0u64, 1, 2, u64::MAX] {
            for it in 0..200u64 {
                for g in 0..16u64 {
                    let s = train_env_seed(seed, it, g);
                    assert_eq!(env_seed_domain(s), Domain::Train as u64);
                    train.insert(s);
                }
            }
        }
        assert_eq!(train.len(), 4 * 200 * 16, "training seeds collide with each other");
        for base in [0u64, 1_000_000, u64::MAX - 5] {
            for i in 0..10 {
                let e = eval_env_seed(base, i);
                assert_eq!(env_seed_domain(e), Domain::Eval as u64);
                assert!(!train.contains(&e));
            }
        }
        for i in 0..1000 {
            let p = env_seed(1, Domain::Preferences, i);
            assert_eq!(env_seed_domain(p), Domain::Preferences as u64);
            assert!(!train.contains(&p));
        }
        // eval seeds are consecutive values under the tag, the same for every master seed
        assert_eq!(eval_env_seed(1_000_000, 3) - eval_env_seed(1_000_000, 0), 3);
    }
}
