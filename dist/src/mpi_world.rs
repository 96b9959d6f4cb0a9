//! The processes of an MPI job (rsmpi), as one [`Collective`].
//!
//! Variable-length messages go as a collective of their lengths followed by a `*v` collective of the bytes.
//! MPI is initialised when the world is made and finalised when it is dropped; one per process.

use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use crate::{check_root, Collective, DistError};

/// `MPI_COMM_WORLD` of this process.
pub struct MpiWorld {
    world: SimpleCommunicator,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

impl MpiWorld {
    /// Initialises MPI; an error if it already was in this process.
    pub fn init() -> Result<Self, DistError> {
        let universe = mpi::initialize()
            .ok_or_else(|| DistError::Launch("MPI is already initialised in this process; make one MpiWorld per process".into()))?;
        let world = universe.world();
        Ok(MpiWorld { world, _universe: universe })
    }
}

fn count(n: usize) -> Result<Count, DistError> {
    Count::try_from(n).map_err(|_| DistError::Launch(format!("a message of {n} bytes is over MPI's 2 GiB count limit")))
}

/// Displacements of consecutive blocks of the given sizes, and their total.
fn displacements(counts: &[Count]) -> (Vec<Count>, usize) {
    let mut displs = Vec::with_capacity(counts.len());
    let mut total: usize = 0;
    for &c in counts {
        displs.push(total as Count);
        total += c as usize;
    }
    (displs, total)
}

fn split(buf: &[u8], counts: &[Count]) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(counts.len());
    let mut at = 0usize;
    for &c in counts {
        out.push(buf[at..at + c as usize].to_vec());
        at += c as usize;
    }
    out
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_gather(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, DistError> {
        let mine = count(bytes.len())?;
        let mut counts = vec![0 as Count; self.size()];
        self.world.all_gather_into(&mine, &mut counts[..]);
        let (displs, total) = displacements(&counts);
        if total == 0 {
            // every message empty (every rank knows it): Open MPI rejects a zero-length Allgatherv buffer
            return Ok(vec![Vec::new(); self.size()]);
        }
        let mut buf = vec![0u8; total];
        {
            let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
            self.world.all_gather_varcount_into(bytes, &mut part);
        }
        Ok(split(&buf, &counts))
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), DistError> {
        check_root(root, self.size())?;
        let root_process = self.world.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        root_process.broadcast_into(&mut len);
        if self.rank() != root {
            bytes.clear();
            bytes.resize(len as usize, 0);
        }
        if len > 0 {
            root_process.broadcast_into(&mut bytes[..]);
        }
        Ok(())
    }

    fn gather(&self, root: usize, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        check_root(root, self.size())?;
        let root_process = self.world.process_at_rank(root as i32);
        let mine = count(bytes.len())?;
        if self.rank() != root {
            root_process.gather_into(&mine);
            root_process.gather_varcount_into(bytes);
            return Ok(None);
        }
        let mut counts = vec![0 as Count; self.size()];
        root_process.gather_into_root(&mine, &mut counts[..]);
        let (displs, total) = displacements(&counts);
        let mut buf = vec![0u8; total];
        {
            let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
            root_process.gather_varcount_into_root(bytes, &mut part);
        }
        Ok(Some(split(&buf, &counts)))
    }

    fn barrier(&self) -> Result<(), DistError> {
        self.world.barrier();
        Ok(())
    }
}
