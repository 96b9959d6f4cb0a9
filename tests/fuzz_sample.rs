//! A seeded sample of the fuzzer (`cargo run --release --example fuzz` runs 100,000 inputs per
//! parser): 1,000 mutated inputs per parser of user files, none may panic.

use std::path::PathBuf;

use rebel_rs::fuzz::{run, Seeds, Target};

#[test]
fn no_parser_panics_on_a_seeded_sample_of_mutated_inputs() {
    tch::set_num_threads(1);
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/swimmer/reference_policy.safetensors");
    let seeds = Seeds::make(&reference).unwrap();
    for t in Target::ALL {
        let r = run(t, &seeds, 1000, 7);
        assert_eq!(r.cases, 1000);
        assert!(r.panics.is_empty(), "{}: {} panics, first: {:?}", r.target, r.panics.len(), r.panics.first());
        // the mutations reach both outcomes: most inputs are refused, some stay valid
        assert!(r.refused > 0, "{}: nothing refused", r.target);
    }
}
