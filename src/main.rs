//! The `callnote` binary: parse the command line, run it, print errors with their cause
//! chain and exit with the contract's status (0 ok, 1 some inputs failed, 2 usage/config).

fn main() -> std::process::ExitCode {
    callnote::cli::main()
}
