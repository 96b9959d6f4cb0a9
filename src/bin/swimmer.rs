//! The Swimmer application: `swimmer replay | bench | render | train | eval | ...`.
fn main() -> std::process::ExitCode {
    rebel_rs::cli::main(Some("Swimmer-v5"))
}
