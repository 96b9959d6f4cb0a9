//! The collectives' semantics on ranks-as-threads (the same checks run under `mpirun` in `examples/mpi_check.rs`).

use std::thread;

use rebel_dist::{share, Collective, DistError, SingleProcess, ThreadGroup};

/// Runs `f` on every rank of an `n`-rank thread group; returns each rank's result in rank order.
fn on_ranks<T: Send + 'static>(n: usize, f: impl Fn(&dyn Collective) -> T + Send + Sync + Copy + 'static) -> Vec<T> {
    let handles: Vec<_> = ThreadGroup::new(n).into_iter().map(|r| thread::spawn(move || f(&r))).collect();
    handles.into_iter().map(|h| h.join().expect("rank thread panicked")).collect()
}

#[test]
fn single_process_collectives_are_the_identity() {
    let c = SingleProcess;
    let mut v = vec![1.5f32, -2.0];
    c.all_reduce_sum(&mut v).unwrap();
    assert_eq!(v, [1.5, -2.0]);
    c.all_reduce_mean(&mut v).unwrap();
    assert_eq!(v, [1.5, -2.0]);
    assert_eq!(c.gather(0, b"x").unwrap(), Some(vec![b"x".to_vec()]));
    assert!(matches!(c.gather(1, b"x"), Err(DistError::BadRoot { root: 1, size: 1 })));
    c.check_equal("params", b"abc").unwrap();
}

#[test]
fn all_reduce_sums_in_rank_order_and_every_rank_gets_the_same_bits() {
    let out = on_ranks(3, |c| {
        // Values whose float sum depends on the order: rank order gives ((1e8 + 1) + -1e8) = 0 in f32.
        let x = [1e8f32, 1.0, -1e8][c.rank()];
        let mut v = vec![x, c.rank() as f32];
        c.all_reduce_sum(&mut v).unwrap();
        v
    });
    for v in &out {
        assert_eq!(v[0].to_bits(), ((1e8f32 + 1.0) + -1e8).to_bits());
        assert_eq!(v[1], 3.0);
    }
    let means = on_ranks(4, |c| {
        let mut v = vec![c.rank() as f32 * 2.0];
        c.all_reduce_mean(&mut v).unwrap();
        v[0]
    });
    assert_eq!(means, vec![3.0; 4]);
}

#[test]
fn f64_all_reduce_keeps_double_precision_and_refuses_other_lengths() {
    let out = on_ranks(2, |c| {
        // 1 + 1e-12 is exact in f64 and lost in f32
        let mut v = vec![[1.0f64, 1e-12][c.rank()], 0.25];
        c.all_reduce_sum_f64(&mut v).unwrap();
        let mut bad = vec![0.0f64; 1 + c.rank()];
        let refused = matches!(c.all_reduce_sum_f64(&mut bad), Err(DistError::Mismatch { .. }));
        (v, refused)
    });
    for (v, refused) in out {
        assert_eq!(v, vec![1.0 + 1e-12, 0.5]);
        assert!(refused);
    }
}

#[test]
fn all_reduce_refuses_buffers_of_different_lengths_on_every_rank() {
    let out = on_ranks(2, |c| {
        let mut v = vec![0.0f32; 2 + c.rank()];
        match c.all_reduce_sum(&mut v) {
            Err(DistError::Mismatch { ranks, .. }) => ranks,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    });
    assert_eq!(out, vec![vec![1], vec![1]]);
}

#[test]
fn broadcast_and_gather_carry_variable_length_messages() {
    let out = on_ranks(3, |c| {
        let mut b = if c.rank() == 1 { b"from one".to_vec() } else { vec![9; 50] };
        c.broadcast(1, &mut b).unwrap();
        let g = c.gather(2, &vec![c.rank() as u8; c.rank() * 3]).unwrap();
        let all = c.all_gather(&[c.rank() as u8]).unwrap();
        (b, g, all)
    });
    for (rank, (b, g, all)) in out.into_iter().enumerate() {
        assert_eq!(b, b"from one");
        assert_eq!(all, vec![vec![0], vec![1], vec![2]]);
        if rank == 2 {
            assert_eq!(g, Some(vec![vec![], vec![1; 3], vec![2; 6]]));
        } else {
            assert_eq!(g, None);
        }
    }
}

#[test]
fn check_equal_names_the_ranks_that_differ() {
    let out = on_ranks(3, |c| {
        let params = if c.rank() == 2 { [1u8, 2, 4] } else { [1u8, 2, 3] };
        c.check_equal("policy parameters", &params).map_err(|e| e.to_string())
    });
    for r in out {
        let msg = r.unwrap_err();
        assert!(msg.contains("policy parameters differs across ranks (rank 0 vs ranks [2])"), "{msg}");
    }
    let same = on_ranks(2, |c| c.check_equal("x", b"same").is_ok());
    assert_eq!(same, vec![true, true]);
}

#[test]
fn a_rank_that_leaves_wakes_the_others_with_an_error_instead_of_a_hang() {
    let mut ranks = ThreadGroup::new(2);
    let r1 = ranks.pop().unwrap();
    let r0 = ranks.pop().unwrap();
    let t = thread::spawn(move || r0.barrier());
    thread::sleep(std::time::Duration::from_millis(50));
    drop(r1);
    assert!(matches!(t.join().unwrap(), Err(DistError::PeerGone(1))));
}

#[test]
fn share_splits_jobs_round_robin_without_overlap_or_loss() {
    let n = 11;
    let mut seen: Vec<usize> = (0..3).flat_map(|r| share(n, r, 3)).collect();
    assert_eq!(share(n, 1, 3).collect::<Vec<_>>(), vec![1, 4, 7, 10]);
    seen.sort();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
}
