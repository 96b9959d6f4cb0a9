//! rebel-label: people label preference pairs in a browser.
//!
//! * [`pairs`]: pairs of policy-rollout pieces with the body poses of every step, and the versioned pair file.
//! * [`journal`]: the fsynced append-only answer journal and atomic file writes.
//! * [`book`]: leases, answers, undo, and the dataset file (the `rebel-rs-preferences` format that `rm train`
//!   reads), rewritten atomically after every answer.
//! * [`server`]: the axum server and its page (`page.html`, a canvas drawing of the recorded poses).
//!
//! The command line is `swimmer label serve` / `swimmer label pairs` (src/cli/labelcmd.rs in the root crate).

pub mod book;
pub mod journal;
pub mod pairs;
pub mod server;

pub use book::{journal_path, pairs_path, ApiError, Book, Counts};
pub use journal::Value;
pub use pairs::{make_pairs, PairClip, PairFile, PairSpec, Piece};
pub use server::{check_options, router, serve, serve_until_answered, ServeOptions};
