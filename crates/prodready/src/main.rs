//! The `prodready` binary: parse, run, map the outcome to an exit code. Everything else is in the library.

fn main() -> std::process::ExitCode {
    prodready::main()
}
