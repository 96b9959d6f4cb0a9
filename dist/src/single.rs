//! One process: every collective is the identity.

use crate::{check_root, Collective, DistError};

/// The job of one process (rank 0 of 1).
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_gather(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, DistError> {
        Ok(vec![bytes.to_vec()])
    }

    fn broadcast(&self, root: usize, _bytes: &mut Vec<u8>) -> Result<(), DistError> {
        check_root(root, 1)
    }

    fn gather(&self, root: usize, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        check_root(root, 1)?;
        Ok(Some(vec![bytes.to_vec()]))
    }
}
