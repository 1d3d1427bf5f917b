//! The `storehook` binary: everything lives in the library, see [`storehook::cli`].

/// mimalloc rather than the system allocator: a request or a delivery makes many small, short-lived
/// allocations across threads, and glibc's malloc took about a tenth of the forwarder's CPU (see
/// BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    storehook::cli::main()
}
