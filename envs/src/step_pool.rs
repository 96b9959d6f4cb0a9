//! The vectorised env's thread pool: `threads − 1` worker threads, and the calling thread works
//! too.
//!
//! Why not rayon: stepping 8 Swimmers takes ~250 µs per call on two threads, and rayon hands every
//! call to its workers and back (the caller sleeps, two wake-ups per call): 8 envs on two threads
//! ran 1.76–1.81× one thread where two one-thread processes ran 2.01–2.06× (README, Speed). Here a
//! call publishes the job, the caller takes indices like a worker, and a worker that finished a job
//! waits for the next one spinning (then yielding its core) for [`SPIN`] before it sleeps, so in a
//! rollout (the next call comes after the policy's few tens of µs) nobody sleeps.
//!
//! Each thread owns a block of the indices (the caller the first, worker `k` the `k + 1`-th) and takes
//! them one at a time from that block's counter, so that from call to call an environment is stepped
//! on the same thread and its state stays in that core's cache; a thread whose block is done takes the
//! rest of the others' blocks from the same counters (a finished-early environment, a reset, leave no
//! thread idle). Which thread runs index `i` can therefore still vary; callers must not depend on it
//! (the vectorised env's environments own their random streams).

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long a worker (or the waiting caller) spins before it sleeps: longer than the gap between two
/// calls of a rollout (the policy's actions, ~10–50 µs), far shorter than a learner phase. After
/// [`BUSY_SPIN`] the spin yields the core at each turn, so that more threads than cores still make
/// progress.
const SPIN: Duration = Duration::from_micros(200);
const BUSY_SPIN: Duration = Duration::from_micros(2);

/// One turn of a spin that started at `start`: `false` once it is time to sleep.
fn spin_turn(start: Instant) -> bool {
    let t = start.elapsed();
    if t < BUSY_SPIN {
        std::hint::spin_loop();
    } else if t < SPIN {
        thread::yield_now();
    } else {
        return false;
    }
    true
}

/// A job as the workers see it. The lifetime is erased: [`StepPool::run`] does not return (or
/// unwind) before every worker has left the job, see [`WaitGuard`].
type JobRef = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// Incremented once per job, after `job`, `n` and `next` are set.
    generation: AtomicUsize,
    /// The current job; written only while no worker holds it (`busy == 0`).
    job: UnsafeCell<Option<(JobRef, usize)>>,
    /// Per thread (the caller first): the next index of its block, counted from the block's start.
    heads: Vec<Head>,
    /// Workers that have not yet left the current job.
    busy: AtomicUsize,
    /// The first panic of a worker in the current job.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// The thread waiting in `run`, to be woken by the last worker when it sleeps.
    caller: Mutex<Option<Thread>>,
    caller_sleeping: AtomicBool,
    /// Per worker: it is (about to be) parked.
    sleeping: Vec<AtomicBool>,
    shutdown: AtomicBool,
}

// SAFETY: `job` is written by the caller only while `busy == 0` (no worker reads it), published by
// the SeqCst increment of `generation`, and read by workers only between seeing that increment and
// their decrement of `busy`; the function behind it is `Sync`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// A block's counter, alone on its cache lines (the threads bump their own counters at every index).
#[repr(align(128))]
struct Head(AtomicUsize);

/// A pool of `threads` threads counting the caller's; `run` needs `&mut self` (one job at a time).
pub(crate) struct StepPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl StepPool {
    /// Starts `threads − 1` worker threads named `rebel-vecenv-K`.
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let extra = threads.saturating_sub(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            heads: (0..=extra).map(|_| Head(AtomicUsize::new(0))).collect(),
            busy: AtomicUsize::new(0),
            panic: Mutex::new(None),
            caller: Mutex::new(None),
            caller_sleeping: AtomicBool::new(false),
            sleeping: (0..extra).map(|_| AtomicBool::new(false)).collect(),
            shutdown: AtomicBool::new(false),
        });
        let mut pool = StepPool { shared: shared.clone(), workers: Vec::with_capacity(extra) };
        for k in 0..extra {
            let s = shared.clone();
            // On error, `pool` is dropped here and stops the workers already started.
            let h = thread::Builder::new().name(format!("rebel-vecenv-{}", k + 1)).spawn(move || worker(&s, k))?;
            pool.workers.push(h);
        }
        Ok(pool)
    }

    /// Runs `f(i)` for every `i < n`, each exactly once, on the pool and the calling thread; returns
    /// when all have run. A panic of `f` is re-raised here after every thread has left the job.
    pub(crate) fn run(&mut self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        if self.workers.is_empty() || n <= 1 {
            (0..n).for_each(f);
            return;
        }
        // SAFETY: lifetime erasure only; `WaitGuard` keeps this call (and its unwinding) from
        // leaving before every worker has let go of the job.
        let job: JobRef = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f) };
        // SAFETY: `busy == 0` here (the previous call waited for it), so no worker reads `job`.
        unsafe { *s.job.get() = Some((job, n)) };
        // A worker's panic left over from a call whose caller panicked too is not this call's.
        s.panic.lock().unwrap_or_else(|p| p.into_inner()).take();
        s.heads.iter().for_each(|h| h.0.store(0, SeqCst));
        s.busy.store(self.workers.len(), SeqCst);
        *s.caller.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread::current());
        s.generation.fetch_add(1, SeqCst);
        for (k, h) in self.workers.iter().enumerate() {
            if s.sleeping[k].load(SeqCst) {
                h.thread().unpark();
            }
        }
        let guard = WaitGuard(s);
        take_indices(s, 0, n, f);
        drop(guard);
        if let Some(p) = s.panic.lock().unwrap_or_else(|p| p.into_inner()).take() {
            resume_unwind(p);
        }
    }
}

/// Waits (spin, then sleep) until every worker has left the current job; runs on drop so that a
/// panic of the caller's share cannot free what the workers still use.
struct WaitGuard<'a>(&'a Shared);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let s = self.0;
        let start = Instant::now();
        while s.busy.load(SeqCst) != 0 {
            if spin_turn(start) {
                continue;
            }
            s.caller_sleeping.store(true, SeqCst);
            if s.busy.load(SeqCst) != 0 {
                thread::park_timeout(Duration::from_millis(10));
            }
            s.caller_sleeping.store(false, SeqCst);
        }
    }
}

/// Runs the indices of thread `slot`'s block, then what is left of the others' blocks, in turn.
fn take_indices(s: &Shared, slot: usize, n: usize, f: &(dyn Fn(usize) + Sync)) {
    let t = s.heads.len();
    for b in (slot..t).chain(0..slot) {
        let (start, end) = (b * n / t, (b + 1) * n / t);
        loop {
            let i = start + s.heads[b].0.fetch_add(1, SeqCst);
            if i >= end {
                break;
            }
            f(i);
        }
    }
}

fn worker(s: &Shared, k: usize) {
    let mut seen = 0usize;
    loop {
        // Wait for a new job: spin, then sleep until the caller unparks us.
        let start = Instant::now();
        while s.generation.load(SeqCst) == seen && !s.shutdown.load(SeqCst) {
            if spin_turn(start) {
                continue;
            }
            s.sleeping[k].store(true, SeqCst);
            if s.generation.load(SeqCst) == seen && !s.shutdown.load(SeqCst) {
                thread::park();
            }
            s.sleeping[k].store(false, SeqCst);
        }
        if s.shutdown.load(SeqCst) {
            return;
        }
        seen = s.generation.load(SeqCst);
        // SAFETY: the caller wrote `job` before publishing `generation` and leaves it alone until
        // `busy` reaches 0, which this worker's decrement below is part of.
        let (job, n) = unsafe { (*s.job.get()).expect("a published job") };
        // SAFETY: the caller's `WaitGuard` keeps the function alive until `busy == 0`.
        let f = unsafe { &*job };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| take_indices(s, k + 1, n, f))) {
            s.panic.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(p);
        }
        // The caller sets `caller_sleeping` and then checks `busy` again (SeqCst both sides): either
        // it sees 0 or this sees it asleep. An unpark that reaches a later call's caller is harmless.
        if s.busy.fetch_sub(1, SeqCst) == 1 && s.caller_sleeping.load(SeqCst) {
            if let Some(t) = s.caller.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                t.unpark();
            }
        }
    }
}

impl Drop for StepPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        for h in self.workers.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_index_runs_exactly_once_on_any_number_of_threads() {
        for threads in 1..=4 {
            let mut pool = StepPool::new(threads).unwrap();
            for n in [0usize, 1, 2, 7, 64] {
                for _ in 0..50 {
                    let hits: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
                    pool.run(n, &|i| {
                        hits[i].fetch_add(1, SeqCst);
                    });
                    assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "threads {threads}, n {n}");
                }
            }
        }
    }

    #[test]
    fn work_is_shared_and_sleeping_workers_wake() {
        let mut pool = StepPool::new(2).unwrap();
        let names = Mutex::new(std::collections::BTreeSet::new());
        for round in 0..20 {
            if round % 5 == 4 {
                // Long enough for the worker to go to sleep; the next job must wake it.
                thread::sleep(SPIN * 10);
            }
            pool.run(8, &|_| {
                names.lock().unwrap().insert(thread::current().name().map(str::to_owned));
                thread::sleep(Duration::from_millis(2));
            });
        }
        let names = names.into_inner().unwrap();
        assert!(names.contains(&Some("rebel-vecenv-1".to_owned())), "{names:?}");
        assert_eq!(names.len(), 2, "the caller and the one worker: {names:?}");
    }

    #[test]
    fn each_thread_steps_its_own_block_from_call_to_call() {
        // Two threads, eight indices of 5 ms each: the caller's block is 0..4 and the worker's 4..8,
        // so an index stays on one thread (one core's cache) unless a thread fell behind by a whole
        // index and the other took it. A shared counter dealt 0, 2, 4, 6 to the caller instead.
        let mut pool = StepPool::new(2).unwrap();
        let caller = thread::current().id();
        let mut kept = 0;
        for _ in 0..20 {
            let on_caller: Vec<AtomicBool> = (0..8).map(|_| AtomicBool::new(false)).collect();
            pool.run(8, &|i| {
                on_caller[i].store(thread::current().id() == caller, SeqCst);
                thread::sleep(Duration::from_millis(5));
            });
            let got: Vec<bool> = on_caller.iter().map(|b| b.load(SeqCst)).collect();
            kept += usize::from(got == [true, true, true, true, false, false, false, false]);
        }
        assert!(kept >= 10, "the blocks were kept in {kept} of 20 calls");
    }

    #[test]
    fn a_panic_reaches_the_caller_after_the_workers_let_go() {
        let mut pool = StepPool::new(3).unwrap();
        let done = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(6, &|i| {
                thread::sleep(Duration::from_millis(1));
                if i == 3 {
                    panic!("index three");
                }
                done.fetch_add(1, SeqCst);
            })
        }));
        let msg = r.unwrap_err();
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"index three"));
        assert_eq!(done.load(SeqCst), 5, "the other indices still ran");
        // The pool keeps working after a panic, also after one where the caller and a worker both
        // panicked (the worker's is not raised again by the next call).
        let both = catch_unwind(AssertUnwindSafe(|| {
            pool.run(4, &|_| {
                thread::sleep(Duration::from_millis(5));
                panic!("every index");
            })
        }));
        assert!(both.is_err());
        let count = AtomicUsize::new(0);
        pool.run(10, &|_| {
            count.fetch_add(1, SeqCst);
        });
        assert_eq!(count.load(SeqCst), 10);
    }
}
