//! The command line (CONTRACT §1): one file per subcommand.

/// Runs the binary and returns its exit status.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
