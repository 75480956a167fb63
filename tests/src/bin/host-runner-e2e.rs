//! The host-runner CLI, built inside this package so process-level tests can
//! run it as a child (Cargo hands a package's tests only its own binaries).

fn main() -> std::process::ExitCode {
    host_runner::cli::main()
}
