//! The `callnote` binary: parse the command line, run it, print errors with their cause
//! chain and exit with the contract's status (0 ok, 1 some inputs failed, 2 usage/config).

/// mimalloc rather than the system allocator: rendering and composing a notification makes
/// many small, short-lived allocations, and the pipeline benchmark runs about 14% faster
/// with it (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    callnote::allocator::configure();
    callnote::cli::main()
}
