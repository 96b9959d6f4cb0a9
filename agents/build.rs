//! Embeds libtorch's library folder as an rpath in this crate's test and
//! example binaries. The logic is shared with the root package's build script.
include!("../build_support/libtorch_rpath.rs");

fn main() {
    emit_libtorch_link_args();
}
