//! Embeds libtorch's library folder as an rpath (and keeps libtorch_cuda linked) in the `rebel-rs` binaries.
//! The logic is shared with `agents/build.rs`.
include!("build_support/libtorch_rpath.rs");

fn main() {
    emit_libtorch_link_args();
}
