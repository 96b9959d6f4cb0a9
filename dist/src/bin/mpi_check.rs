//! The collectives' semantics across the ranks of a real MPI job. Prints one line per rank, `rank R of N ok`, and
//! exits non-zero on the first failed check. Run by `dist/tests/mpi.rs` under `mpirun -np 2`.

use rebel_dist::{from_env, Collective, DistError};

fn check(c: &dyn Collective) -> Result<(), String> {
    let (rank, size) = (c.rank(), c.size());
    if size < 2 {
        return Err(format!("expected at least 2 ranks, got {size}: run under mpirun -np 2"));
    }
    let mut v = vec![rank as f32 + 0.5, 1.0];
    c.all_reduce_sum(&mut v).map_err(|e| e.to_string())?;
    let want0: f32 = (0..size).map(|r| r as f32 + 0.5).sum();
    if v != [want0, size as f32] {
        return Err(format!("all_reduce_sum gave {v:?}"));
    }
    let mut b = if rank == size - 1 { vec![7u8; 1000] } else { Vec::new() };
    c.broadcast(size - 1, &mut b).map_err(|e| e.to_string())?;
    if b != vec![7u8; 1000] {
        return Err(format!("broadcast gave {} bytes", b.len()));
    }
    let g = c.gather(0, &vec![rank as u8; rank + 1]).map_err(|e| e.to_string())?;
    let want: Vec<Vec<u8>> = (0..size).map(|r| vec![r as u8; r + 1]).collect();
    if (rank == 0 && g.as_ref() != Some(&want)) || (rank != 0 && g.is_some()) {
        return Err(format!("gather gave {g:?}"));
    }
    if c.all_gather(&[rank as u8]).map_err(|e| e.to_string())? != (0..size).map(|r| vec![r as u8]).collect::<Vec<_>>() {
        return Err("all_gather out of rank order".into());
    }
    c.check_equal("same bytes", b"abc").map_err(|e| e.to_string())?;
    match c.check_equal("rank-dependent bytes", &[rank as u8]) {
        Err(DistError::Mismatch { ranks, .. }) if ranks == (1..size).collect::<Vec<_>>() => {}
        other => return Err(format!("check_equal on differing bytes gave {other:?}")),
    }
    let mut short = vec![0.0f32; 1 + rank];
    if c.all_reduce_sum(&mut short).is_ok() {
        return Err("all_reduce_sum accepted buffers of different lengths".into());
    }
    // every message empty (data-parallel train's "no rank failed" round), and an empty broadcast
    let empties = c.all_gather(&[]).map_err(|e| e.to_string())?;
    if empties != vec![Vec::<u8>::new(); size] {
        return Err(format!("all_gather of empty messages gave {empties:?}"));
    }
    let mut nothing = if rank == 0 { Vec::new() } else { vec![1u8] };
    c.broadcast(0, &mut nothing).map_err(|e| e.to_string())?;
    if !nothing.is_empty() {
        return Err("an empty broadcast left bytes behind".into());
    }
    let mut f = vec![rank as f64 + 0.5];
    c.all_reduce_sum_f64(&mut f).map_err(|e| e.to_string())?;
    if f[0] != (0..size).map(|r| r as f64 + 0.5).sum::<f64>() {
        return Err(format!("all_reduce_sum_f64 gave {f:?}"));
    }
    c.barrier().map_err(|e| e.to_string())
}

fn main() {
    let c = match from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mpi-check: {e}");
            std::process::exit(2);
        }
    };
    match check(c.as_ref()) {
        Ok(()) => println!("rank {} of {} ok", c.rank(), c.size()),
        Err(e) => {
            eprintln!("mpi-check: rank {}: {e}", c.rank());
            std::process::exit(1);
        }
    }
}
