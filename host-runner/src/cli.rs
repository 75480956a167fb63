//! The command line: parsing, logging setup, output, exit codes. The only
//! place (with `main.rs`) that uses `anyhow`.

use crate::commands::{RunOptions, list_records, run_sync, test_connection};
use crate::config::Config;
use crate::demo::{DemoOptions, run_demo};
use crate::error::{Error, exit_code};
use crate::progress::{StderrAroundProgress, TerminalProgress};
use crate::render;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
The app password never comes from the command line: it is read from the
environment variable named by `app_password_env` in the configuration
(default NEXTCLOUD_APP_PASSWORD), or from the file in `app_password_file`.

Configuration (TOML):
  base_url = \"https://cloud.example.com\"
  username = \"alice\"
  database = \"nextcloud.sqlite\"      # relative to the configuration file

Examples:
  NEXTCLOUD_APP_PASSWORD=... host-runner test-connection --config nc.toml
  NEXTCLOUD_APP_PASSWORD=... host-runner sync --config nc.toml --json
  host-runner records --config nc.toml
  host-runner demo

Exit codes:
  0  success
  1  unexpected failure
  2  configuration or command-line problem
  3  Nextcloud rejected the credentials
  4  HTTP, server or protocol failure
  5  SQLite storage failure
  6  the connector trapped or broke a sandbox limit (panic, memory, time)
  7  the connector component is missing, incompatible or does not load

Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more.";

#[derive(Debug, Parser)]
#[command(
    name = "host-runner",
    version,
    about = "Runs the Nextcloud connector WebAssembly component: real HTTP, SQLite state and records",
    after_help = AFTER_HELP
)]
struct Cli {
    /// The connector component; default: $NEXTCLOUD_CONNECTOR_COMPONENT, then
    /// target/wasm32-wasip2/release/connector.wasm (build it with `cargo guest`).
    #[arg(long, global = true, value_name = "PATH")]
    component: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one sync: full on the first run, incremental after.
    #[command(
        after_help = "Example:\n  NEXTCLOUD_APP_PASSWORD=... host-runner sync --config nc.toml"
    )]
    Sync(ConfigArgs),
    /// Print the live records of the database (a tree, or JSON lines with --json).
    #[command(after_help = "Example:\n  host-runner records --config nc.toml --json | jq .path")]
    Records(ConfigArgs),
    /// Check that Nextcloud answers and accepts the credentials.
    #[command(
        name = "test-connection",
        after_help = "Example:\n  NEXTCLOUD_APP_PASSWORD=... host-runner test-connection --config nc.toml"
    )]
    TestConnection(ConfigArgs),
    /// Start a simulated Nextcloud on loopback, sync its sample tree into a
    /// temporary database, and sync again to show nothing changed.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Keep the configuration and database in DIR.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,host_runner=info,connector=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| StderrAroundProgress)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(true)
        .try_init();
}

/// Parses the command line, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit_code::CONFIG as u8
            } else {
                exit_code::OK as u8
            });
        }
    };
    init_tracing();
    let json = match &cli.command {
        Command::Sync(a) | Command::Records(a) | Command::TestConnection(a) => a.json,
        Command::Demo(a) => a.json,
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e
                .downcast_ref::<Error>()
                .map(Error::exit_code)
                .unwrap_or(exit_code::OTHER);
            if json {
                let kind = e.downcast_ref::<Error>().map(error_kind).unwrap_or("other");
                let line = serde_json::json!({
                    "error": { "kind": kind, "message": format!("{e:#}"), "exit_code": code }
                });
                println!("{line}");
            }
            eprintln!("error: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Config(_) => "config",
        Error::Component(_) => "component",
        Error::Unauthorized(_) => "unauthorized",
        Error::Server(_) => "server",
        Error::Storage(_) => "storage",
        Error::Guest(_) => "guest",
    }
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let component = cli.component;
    match cli.command {
        Command::Sync(args) => {
            let config = Config::load(&args.config)?;
            let options = RunOptions {
                component,
                progress: TerminalProgress::for_stderr(),
            };
            let report = run_sync(&config, &options)?;
            if args.json {
                print_json(&report)?;
            } else {
                print!("{}", render::sync_summary(&report));
            }
        }
        Command::Records(args) => {
            let config = Config::load(&args.config)?;
            let records = list_records(&config)?;
            let mut out = std::io::stdout().lock();
            if args.json {
                for r in &records {
                    serde_json::to_writer(&mut out, &render::RecordLine::of(r))?;
                    writeln!(out)?;
                }
            } else {
                write!(out, "{}", render::record_tree(&records))?;
            }
        }
        Command::TestConnection(args) => {
            let config = Config::load(&args.config)?;
            let options = RunOptions {
                component,
                progress: TerminalProgress::for_stderr(),
            };
            let report = test_connection(&config, &options)?;
            if args.json {
                print_json(&report)?;
            } else {
                print!("{}", render::connection(&config.base_url, &report));
            }
        }
        Command::Demo(args) => {
            let options = DemoOptions {
                keep: args.keep,
                component,
                progress: TerminalProgress::for_stderr(),
            };
            let outcome = run_demo(&options)?;
            if args.json {
                print_json(&serde_json::json!({
                    "base_url": outcome.base_url,
                    "username": outcome.username,
                    "config": outcome.kept.then(|| outcome.config_path.display().to_string()),
                    "database": outcome.kept.then(|| outcome.database.display().to_string()),
                    "records": outcome.records.len(),
                    "first_sync": outcome.first,
                    "second_sync": outcome.second,
                }))?;
            } else {
                let mut text = format!(
                    "Started a simulated Nextcloud at {} (user {}).\n\nFirst sync:\n{}\nRecords now in the database:\n{}\nSecond sync:\n{}",
                    outcome.base_url,
                    outcome.username,
                    render::sync_summary(&outcome.first),
                    render::record_tree(&outcome.records),
                    render::sync_summary(&outcome.second),
                );
                if outcome.second.changes() == 0 {
                    text.push_str("\nThe second sync found nothing to change, as it should.\n");
                } else {
                    text.push_str(&format!(
                        "\nUnexpected: the second sync reported {} changes.\n",
                        outcome.second.changes()
                    ));
                }
                if outcome.kept {
                    text.push_str(&format!(
                        "Kept {} and {}.\n",
                        outcome.config_path.display(),
                        outcome.database.display()
                    ));
                }
                print!("{text}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed_and_documents_exit_codes() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for code in [
            "0  success",
            "3  Nextcloud rejected",
            "6  the connector trapped",
            "7  the connector component",
        ] {
            assert!(help.contains(code), "{code}");
        }
    }

    #[test]
    fn commands_parse() {
        let cli =
            Cli::try_parse_from(["host-runner", "sync", "--config", "a.toml", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Sync(ConfigArgs { json: true, .. })
        ));
        let cli = Cli::try_parse_from([
            "host-runner",
            "--component",
            "c.wasm",
            "test-connection",
            "-c",
            "a.toml",
        ])
        .unwrap();
        assert_eq!(cli.component, Some(PathBuf::from("c.wasm")));
        let cli = Cli::try_parse_from(["host-runner", "demo", "--keep", "d"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Demo(DemoArgs {
                keep: Some(_),
                json: false
            })
        ));
        assert!(
            Cli::try_parse_from(["host-runner", "sync"]).is_err(),
            "--config is required"
        );
        assert!(
            Cli::try_parse_from(["host-runner", "sync", "-c", "a", "--password", "x"]).is_err(),
            "no way to pass a secret"
        );
    }
}
