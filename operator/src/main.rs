//! The `ecsop` binary: a thin shell over [`ecsop::cli`].

fn main() -> std::process::ExitCode {
    ecsop::cli::main()
}
