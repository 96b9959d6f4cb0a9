//! The generic application: the same subcommands as `swimmer`, for any registered `--env`.
fn main() -> std::process::ExitCode {
    rebel_rs::cli::main(None)
}
