//! Collectives over the ranks of a job: the only thing rebel-rs needs to run past one process.
//!
//! | implementation | ranks | when |
//! |---|---|---|
//! | [`SingleProcess`] | 1 | the default: every collective is the identity |
//! | [`ThreadGroup`] | n threads of one process | tests and single-machine data parallelism without MPI |
//! | `MpiWorld` (feature `mpi`) | the processes of `mpirun`/`srun` | clusters |
//!
//! Every implementation gives **bit-identical results on every rank**: an all-reduce is a gather to rank 0, a sum
//! in rank order, and a broadcast of the result, so parameters updated from all-reduced gradients stay equal across
//! ranks (checked by [`Collective::check_equal`]). The buffers rebel-rs reduces are gradients of small MLPs (a few
//! thousand floats), for which this costs nothing measurable.
//!
//! [`from_env`] picks the implementation for the current process: MPI when an MPI launcher started it, one process
//! otherwise.

use std::fmt;

mod single;
mod threads;
#[cfg(feature = "mpi")]
mod mpi_world;

pub use single::SingleProcess;
pub use threads::{ThreadGroup, ThreadRank};
#[cfg(feature = "mpi")]
pub use mpi_world::MpiWorld;

/// What can go wrong in a collective.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A rank of a [`ThreadGroup`] ended (or panicked) while the others waited for it.
    #[error("rank {0} left the group while the others waited for it; see that rank's error")]
    PeerGone(usize),
    /// Ranks disagree on something that must be equal (parameters, buffer lengths, a configuration).
    #[error("{what} differs across ranks (rank 0 vs ranks {ranks:?}); the ranks have diverged: restart from the last checkpoint, and check that every rank runs the same binary and configuration")]
    Mismatch { what: String, ranks: Vec<usize> },
    /// A root rank outside the job.
    #[error("root rank {root} is not in a job of {size} ranks")]
    BadRoot { root: usize, size: usize },
    /// The process was started by an MPI launcher but this binary cannot speak MPI.
    #[error("{0}")]
    Launch(String),
}

/// The collectives of one rank. Every rank must call the same collectives in the same order.
pub trait Collective {
    /// This rank, `0..size()`.
    fn rank(&self) -> usize;
    /// Number of ranks in the job.
    fn size(&self) -> usize;
    /// Every rank's bytes, in rank order, on every rank (an all-gather of variable-length messages).
    fn all_gather(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, DistError>;
    /// The root's bytes on every rank; `bytes` is read on the root and replaced elsewhere.
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), DistError>;
    /// Every rank's bytes on the root, in rank order (`Some` on the root, `None` elsewhere).
    fn gather(&self, root: usize, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError>;
    /// Waits until every rank has reached it.
    fn barrier(&self) -> Result<(), DistError> {
        self.all_gather(&[]).map(|_| ())
    }

    /// Rank 0, the rank that writes files.
    fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Element-wise sum over ranks, in place, summed in rank order: the same bits on every rank.
    /// Every rank must pass a buffer of the same length (a different length is [`DistError::Mismatch`]).
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<(), DistError> {
        reduce_sum(self, buf)
    }

    /// [`Collective::all_reduce_sum`] in double precision (gradients and batch statistics of data-parallel
    /// training are reduced in f64, so that the sum over ranks adds no rounding of its own worth measuring).
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), DistError> {
        reduce_sum(self, buf)
    }

    /// Element-wise mean over ranks, in place ([`Collective::all_reduce_sum`] divided by the number of ranks).
    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), DistError> {
        self.all_reduce_sum(buf)?;
        let n = self.size() as f32;
        if n > 1.0 {
            buf.iter_mut().for_each(|x| *x /= n);
        }
        Ok(())
    }

    /// Checks that every rank holds the same bytes (parameters, a configuration); on every rank, an error naming
    /// the ranks that differ from rank 0.
    fn check_equal(&self, what: &str, bytes: &[u8]) -> Result<(), DistError> {
        let digests = self.all_gather(&fnv1a64(bytes).to_le_bytes())?;
        let ranks: Vec<usize> = (1..digests.len()).filter(|&r| digests[r] != digests[0]).collect();
        if ranks.is_empty() {
            Ok(())
        } else {
            Err(DistError::Mismatch { what: what.to_string(), ranks })
        }
    }
}

/// A number an all-reduce can sum: little-endian bytes of a fixed width.
trait Elem: Copy + Default + std::ops::AddAssign {
    const WIDTH: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(b: &[u8]) -> Self;
}

impl Elem for f32 {
    const WIDTH: usize = 4;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f32::from_le_bytes(b.try_into().expect("4 bytes"))
    }
}

impl Elem for f64 {
    const WIDTH: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        f64::from_le_bytes(b.try_into().expect("8 bytes"))
    }
}

/// The all-reduce of every implementation: gather to rank 0, sum in rank order, broadcast (or broadcast the
/// ranks whose buffer length differs from rank 0's, flagged by a leading byte, so that every rank fails alike).
fn reduce_sum<C: Collective + ?Sized, E: Elem>(c: &C, buf: &mut [E]) -> Result<(), DistError> {
    if c.size() == 1 {
        return Ok(());
    }
    let encode = |x: &[E]| {
        let mut out = Vec::with_capacity(x.len() * E::WIDTH);
        x.iter().for_each(|v| v.put(&mut out));
        out
    };
    let want = buf.len() * E::WIDTH;
    let parts = c.gather(0, &encode(buf))?;
    let mut out = Vec::new();
    if let Some(parts) = parts {
        let bad: Vec<usize> = (0..parts.len()).filter(|&r| parts[r].len() != want).collect();
        if bad.is_empty() {
            let mut sum = vec![E::default(); buf.len()];
            for p in &parts {
                for (s, x) in sum.iter_mut().zip(p.chunks_exact(E::WIDTH)) {
                    *s += E::get(x);
                }
            }
            out = encode(&sum);
        } else {
            out = encode_ranks(&bad);
            out.insert(0, 1);
        }
    }
    c.broadcast(0, &mut out)?;
    if out.len() != want {
        let ranks = decode_ranks(out.get(1..).unwrap_or(&[]));
        return Err(DistError::Mismatch { what: format!("all-reduce buffer length ({} here)", buf.len()), ranks });
    }
    for (b, x) in buf.iter_mut().zip(out.chunks_exact(E::WIDTH)) {
        *b = E::get(x);
    }
    Ok(())
}

/// The collectives for this process: MPI when an MPI launcher started it (`mpirun`, `srun` with PMI/PMIx), one
/// process otherwise. Under a launcher, a binary built without the `mpi` feature is an error that says how to
/// rebuild, rather than N independent copies of one job writing into the same files.
pub fn from_env() -> Result<Box<dyn Collective>, DistError> {
    match launcher_size() {
        None | Some(1) => Ok(Box::new(SingleProcess)),
        Some(n) => mpi_or_error(n),
    }
}

#[cfg(feature = "mpi")]
fn mpi_or_error(_n: usize) -> Result<Box<dyn Collective>, DistError> {
    Ok(Box::new(MpiWorld::init()?))
}

#[cfg(not(feature = "mpi"))]
fn mpi_or_error(n: usize) -> Result<Box<dyn Collective>, DistError> {
    Err(DistError::Launch(format!(
        "started by an MPI launcher with {n} ranks, but this binary was built without MPI; \
         rebuild with `cargo build --release --features mpi` (needs openmpi-bin, libopenmpi-dev and libclang-dev), \
         or run it without mpirun"
    )))
}

/// The number of ranks an MPI launcher announced in the environment (Open MPI, MPICH/Hydra and PMIx set these).
pub fn launcher_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.trim().parse::<usize>().ok())
}

/// Whether the environment variable `name` is one an MPI launcher sets for its ranks (Open MPI, PMI, PMIx,
/// Hydra). A rank that spawns a one-process child (`compare` runs `train` in child processes) removes them from
/// the child's environment, or the child would take itself for a rank of the job ([`from_env`]).
pub fn is_launcher_var(name: &str) -> bool {
    ["OMPI_", "PMI_", "PMIX_", "HYDRA_", "MPI_LOCALNRANKS", "MPI_LOCALRANKID"].iter().any(|p| name.starts_with(p))
}

/// The items of `0..n` that `rank` of `size` handles: round robin, so that ranks get equal shares (±1) whatever the
/// order of the jobs.
pub fn share(n: usize, rank: usize, size: usize) -> impl Iterator<Item = usize> {
    (rank..n).step_by(size.max(1))
}

/// FNV-1a, 64 bits (a digest for equality checks across ranks, not a cryptographic hash).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Little-endian bytes of a float slice.
pub fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Floats from little-endian bytes (a trailing partial float is ignored).
pub fn f32_values(b: &[u8]) -> impl Iterator<Item = f32> + '_ {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fn encode_ranks(r: &[usize]) -> Vec<u8> {
    r.iter().flat_map(|&x| (x as u64).to_le_bytes()).collect()
}

fn decode_ranks(b: &[u8]) -> Vec<usize> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")) as usize).collect()
}

fn check_root(root: usize, size: usize) -> Result<(), DistError> {
    if root < size {
        Ok(())
    } else {
        Err(DistError::BadRoot { root, size })
    }
}

impl fmt::Debug for dyn Collective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rank {} of {}", self.rank(), self.size())
    }
}
