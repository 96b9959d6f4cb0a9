//! Ranks as threads of one process: the same collectives as MPI, over shared memory.
//!
//! Each collective is one all-gather round: every rank deposits its message, the last to arrive publishes all of
//! them and starts the next round. A rank that is dropped (its thread ended or panicked) wakes the others with
//! [`DistError::PeerGone`] instead of leaving them waiting forever.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::{check_root, Collective, DistError};

struct State {
    round: u64,
    slots: Vec<Option<Vec<u8>>>,
    arrived: usize,
    published: Arc<Vec<Vec<u8>>>,
    gone: Option<usize>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    size: usize,
}

/// A group of `n` ranks for `n` threads of this process.
pub struct ThreadGroup;

impl ThreadGroup {
    /// The `n` ranks of a new group, rank `i` at index `i`; move each to its own thread.
    pub fn new(n: usize) -> Vec<ThreadRank> {
        assert!(n > 0, "a thread group needs at least one rank");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                round: 0,
                slots: vec![None; n],
                arrived: 0,
                published: Arc::new(Vec::new()),
                gone: None,
            }),
            cv: Condvar::new(),
            size: n,
        });
        (0..n).map(|rank| ThreadRank { rank, shared: shared.clone() }).collect()
    }
}

/// One rank of a [`ThreadGroup`].
pub struct ThreadRank {
    rank: usize,
    shared: Arc<Shared>,
}

impl ThreadRank {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters here: the panicking
        // rank is reported as gone by its Drop.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collective for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn all_gather(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, DistError> {
        let mut st = self.lock();
        if let Some(r) = st.gone {
            return Err(DistError::PeerGone(r));
        }
        let my_round = st.round;
        st.slots[self.rank] = Some(bytes.to_vec());
        st.arrived += 1;
        if st.arrived == self.shared.size {
            let all: Vec<Vec<u8>> = st.slots.iter_mut().map(|s| s.take().unwrap_or_default()).collect();
            st.published = Arc::new(all);
            st.arrived = 0;
            st.round += 1;
            self.shared.cv.notify_all();
            return Ok((*st.published).clone());
        }
        while st.round == my_round {
            if let Some(r) = st.gone {
                return Err(DistError::PeerGone(r));
            }
            st = self.shared.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        // The next round cannot complete before this rank joins it, so `published` is still this round's.
        Ok((*st.published).clone())
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), DistError> {
        check_root(root, self.size())?;
        let mine: &[u8] = if self.rank == root { bytes } else { &[] };
        let mut all = self.all_gather(mine)?;
        if self.rank != root {
            *bytes = std::mem::take(&mut all[root]);
        }
        Ok(())
    }

    fn gather(&self, root: usize, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        check_root(root, self.size())?;
        let all = self.all_gather(bytes)?;
        Ok((self.rank == root).then_some(all))
    }
}

impl Drop for ThreadRank {
    fn drop(&mut self) {
        let mut st = self.lock();
        if st.gone.is_none() {
            st.gone = Some(self.rank);
        }
        self.shared.cv.notify_all();
    }
}
