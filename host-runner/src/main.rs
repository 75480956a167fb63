fn main() -> std::process::ExitCode {
    host_runner::cli::main()
}
