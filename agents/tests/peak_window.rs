//! The learner-phase memory measurement (`util::PeakWindow`), in a process of its own so that no other
//! test allocates inside its window.

use rebel_agents::util::{peak_rss_mb, PeakWindow};

#[test]
fn a_peak_window_sees_its_own_rise_and_keeps_the_process_peak() {
    // an earlier, larger peak: 96 MiB touched and freed
    let big = vec![1u8; 96 << 20];
    std::hint::black_box(&big);
    drop(big);
    let before = peak_rss_mb();
    let Some(w) = PeakWindow::open() else {
        eprintln!("this kernel does not let a process reset its peak RSS; nothing to check");
        return;
    };
    assert!(w.rise_mb() < 8.0, "nothing allocated yet: {}", w.rise_mb());
    let small = vec![1u8; 24 << 20];
    std::hint::black_box(&small);
    let rise = w.rise_mb();
    drop(small);
    assert!((20.0..40.0).contains(&rise), "24 MiB touched in the window, rise {rise}");
    assert!(peak_rss_mb() >= before, "the process's peak survives the reset: {} < {before}", peak_rss_mb());
}
