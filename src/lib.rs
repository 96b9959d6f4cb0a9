//! rebel-rs: REBEL (Regressing Relative Rewards) for continuous control on Rapier, with libtorch.
//!
//! This crate holds the command line shared by the `swimmer` and `rebel` binaries; the
//! environments live in `rebel-envs`, everything that touches tch in `rebel-agents`.

pub mod cli;
pub mod fuzz;

/// jemalloc for every allocation of the binaries: Rust's, and, since its `malloc`, `free` and the rest are exported
/// unprefixed (the feature `unprefixed_malloc_on_supported_platforms`), libtorch's and every other C or C++
/// library's in the process. Against glibc's allocator: the default run 3–4 % faster and about 10 MiB lower at its
/// peak with jemalloc for Rust alone, 8 MiB lower again with libtorch on it too (README, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's count of the calling thread's bytes for the learner's memory figure
/// ([`rebel_agents::util::AllocWindow`]): `thread.peak.reset` and `thread.peak.read` (jemalloc 5.3, built with
/// `stats`).
pub fn register_alloc_peak_probe() {
    fn reset() -> bool {
        // SAFETY: a NUL-terminated name; this control takes and gives nothing
        unsafe { tikv_jemalloc_sys::mallctl(c"thread.peak.reset".as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut(), 0) == 0 }
    }
    fn read() -> Option<u64> {
        let (mut v, mut len) = (0u64, std::mem::size_of::<u64>());
        // SAFETY: a NUL-terminated name and a u64 with its size, which this control writes
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(c"thread.peak.read".as_ptr(), (&mut v as *mut u64).cast(), &mut len, std::ptr::null_mut(), 0)
        };
        (rc == 0 && len == std::mem::size_of::<u64>()).then_some(v)
    }
    rebel_agents::util::set_alloc_peak_probe(rebel_agents::util::AllocPeakProbe { reset, read });
}

#[cfg(test)]
mod tests {
    use rebel_agents::util::AllocWindow;
    use std::hint::black_box;

    /// The learner's byte count ([`AllocWindow`]) sees the most that the calling thread's allocations held at once
    /// since it opened, Rust's and libtorch's alike, and neither what was freed before it opened nor what another
    /// thread allocates.
    #[test]
    fn an_alloc_window_counts_the_most_its_thread_held_at_once() {
        super::register_alloc_peak_probe();
        drop(black_box(vec![1u8; 64 << 20]));
        let w = AllocWindow::open().expect("jemalloc, built with `stats`, counts a thread's bytes");
        assert!(w.peak_mb() < 1.0, "nothing held yet: {}", w.peak_mb());
        drop(black_box(vec![1u8; 16 << 20]));
        // 4 MiB from libtorch's own allocator, which allocates from jemalloc too
        let t = tch::Tensor::ones([1 << 20], (tch::Kind::Float, tch::Device::Cpu));
        let p = w.peak_mb();
        assert!((16.0..17.5).contains(&p), "16 MiB held at most at once (then 4), peak {p}");
        std::thread::spawn(|| drop(black_box(vec![1u8; 48 << 20]))).join().unwrap();
        assert!(w.peak_mb() < 17.5, "another thread's 48 MiB counted: {}", w.peak_mb());
        let w = AllocWindow::open().unwrap();
        let u = tch::Tensor::ones([2 << 20], (tch::Kind::Float, tch::Device::Cpu));
        let p = w.peak_mb();
        assert!((8.0..9.5).contains(&p), "8 MiB of tensor, peak {p}");
        drop((t, u));
    }
}
