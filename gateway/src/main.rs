//! The `storehook` binary: everything lives in the library, see [`storehook::cli`].

fn main() -> std::process::ExitCode {
    storehook::cli::main()
}
