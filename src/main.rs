//! The `cancelguard` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    cancelguard::cli::main()
}
