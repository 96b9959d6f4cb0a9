//! Embeds libtorch's library folder as an rpath in this crate's test binaries (shared logic, see
//! `build_support/libtorch_rpath.rs`).
include!("../build_support/libtorch_rpath.rs");

fn main() {
    emit_libtorch_link_args();
}
