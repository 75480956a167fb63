//! The command line: parsing, logging setup, output, exit codes. The only
//! place (with `main.rs`) that uses `anyhow`.

use crate::commands::{RunOptions, list_records, run_sync, test_connection};
use crate::config::{Config, ConfigFile};
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
  NEXTCLOUD_APP_PASSWORD=... host-runner run --config nc.toml --json
  host-runner download --config nc.toml --path \"/Reports 2024/Q1.pdf\" -o q1.pdf
  host-runner demo
  host-runner inspect --component vendor-connector.wasm

Exit codes:
  0  success
  1  unexpected failure
  2  configuration or command-line problem
  3  Nextcloud rejected the credentials
  4  HTTP, server or protocol failure
  5  storage failure: the SQLite file or PostgreSQL database (unreachable,
     wrong password, newer schema), or writing a downloaded file
  6  the connector trapped or broke a sandbox limit (panic, memory, time)
  7  the connector component is missing, incompatible or does not load
  8  another sync or worker holds the account (its lock file or lease), or
     took the lease over while this sync ran

`run` syncs every account of the file every `interval_minutes` (default 60)
until SIGINT or SIGTERM: the sync in flight commits its current batch and
`run` exits 0 (a second signal exits at once with 130). A file may list
several accounts as [[account]] tables; the other commands then take
`--account NAME`. Accounts in one PostgreSQL database are shared by every
`run` of the same file, on any machine: at most one syncs an account at a
time (`host-runner status` shows who).

Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more.";

#[derive(Debug, Parser)]
#[command(
    name = "host-runner",
    version,
    about = "Runs the Nextcloud connector WebAssembly component: real HTTP, state and records in SQLite or PostgreSQL",
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
    /// Sync every account of the file every `interval_minutes`, until SIGINT
    /// or SIGTERM; a line per sync (JSON lines with --json).
    #[command(
        after_help = "Example:\n  NEXTCLOUD_APP_PASSWORD=... host-runner run --config nc.toml --json"
    )]
    Run(ConfigArgs),
    /// Show every account of the file: its last sync and how it ended, how
    /// far behind it is, who syncs it now, and what the sink holds.
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Print the live records of the database (a tree, or JSON lines with --json).
    #[command(after_help = "Example:\n  host-runner records --config nc.toml --json | jq .path")]
    Records(ConfigArgs),
    /// Check that Nextcloud answers and accepts the credentials.
    #[command(
        name = "test-connection",
        after_help = "Example:\n  NEXTCLOUD_APP_PASSWORD=... host-runner test-connection --config nc.toml"
    )]
    TestConnection(ConfigArgs),
    /// Download one file of the records (by id or path) into OUT, through
    /// the connector; a progress bar shows on a terminal.
    #[command(after_help = DOWNLOAD_HELP)]
    Download(DownloadArgs),
    /// Start a simulated Nextcloud on loopback, sync its sample tree into a
    /// temporary database, and sync again to show nothing changed.
    Demo(DemoArgs),
    /// Show a component's WIT version and every capability it asks for, and
    /// which a run would grant, without running it.
    #[command(after_help = INSPECT_HELP)]
    Inspect(InspectArgs),
    /// Print the change feed: every change the sink committed, in order
    /// (JSON lines with --json), from a sequence number or a named consumer's
    /// position.
    #[command(
        after_help = CHANGES_HELP,
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Changes(ChangesArgs),
}

const STATUS_HELP: &str = "\
lag_seconds is the time since the latest successful sync began: the records
reflect the server as it was then, at the latest. With PostgreSQL, lease
shows the worker holding each account and when the account is due again.
Exit code 0 even when an account's state cannot be read: its entry says why.

Example:
  host-runner status -c nc.toml --json | jq '.[] | {account, lag_seconds, holder}'";

#[derive(Debug, Args)]
struct StatusArgs {
    /// The TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Print a JSON array on stdout instead of text.
    #[arg(long)]
    json: bool,
}

const CHANGES_HELP: &str = "\
Each change has a sequence number, gapless and strictly increasing in commit
order, its kind (new, content-updated, metadata-updated, deleted, user,
record-group), the external id, and the record as committed (for deleted: as
it last was). A consumer's position moves only when it acknowledges: with
--ack once a batch is written, or with `changes ack`. A consumer that stops
before acknowledging reads the same changes again: at least once, in order,
nothing missing. `feed_retention_days` trims only what every consumer passed.

Examples:
  host-runner changes -c nc.toml --json --since 0 --limit 100
  host-runner changes -c nc.toml --json --consumer indexer --follow --ack
  host-runner changes ack -c nc.toml --consumer indexer --seq 1234";

#[derive(Debug, Args)]
struct ChangesArgs {
    #[command(subcommand)]
    action: Option<ChangesAction>,
    /// The TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE", required = true)]
    config: Option<PathBuf>,
    /// Which account of a file with several [[account]] tables (its `name`).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Start after this sequence number [default: 0, the start].
    #[arg(long, value_name = "SEQ", conflicts_with = "consumer")]
    since: Option<i64>,
    /// Start after this consumer's acknowledged position (registered at 0 on first use).
    #[arg(long, value_name = "NAME")]
    consumer: Option<String>,
    /// At most this many changes (per read with --follow).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    limit: u32,
    /// Keep waiting for new changes until SIGINT or SIGTERM.
    #[arg(long)]
    follow: bool,
    /// Acknowledge what was written for --consumer, once it was written.
    #[arg(long, requires = "consumer")]
    ack: bool,
    /// Print JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ChangesAction {
    /// Move a consumer's position: it has every change up to SEQ.
    Ack(AckArgs),
}

#[derive(Debug, Args)]
struct AckArgs {
    /// The TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Which account of a file with several [[account]] tables (its `name`).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    #[arg(long, value_name = "NAME")]
    consumer: String,
    #[arg(long, value_name = "SEQ")]
    seq: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

const INSPECT_HELP: &str = "\
A capability is a set of HTTP methods on paths under the Nextcloud install
(`{user}` is the user id the host resolves itself). A run grants what the
component declares, narrowed by the configuration's `grants`; a capability
that writes (files.write, shares.write) is granted only when `grants` names it.
Every other request is refused before it is sent.

Examples:
  host-runner inspect
  host-runner inspect --component vendor-connector.wasm --config nc.toml --json";

#[derive(Debug, Args)]
struct InspectArgs {
    /// Show what this configuration's `grants` would allow (default: read-only).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Which account of a file with several [[account]] tables (its `name`).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Which account of a file with several [[account]] tables (its `name`).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
}

const DOWNLOAD_HELP: &str = "\
The content goes to OUT.part beside OUT and is renamed to OUT only when it is
complete and, when Nextcloud stores a checksum (SHA1, MD5 or Adler-32), verified.
With --resume an interrupted download is continued from OUT.part with one Range
request (or started over when the file changed or the server sends it all),
and OUT.part is kept when the transfer breaks again. Without it OUT.part is
removed on any failure.

Exit codes: 2 a folder, an unknown record or a bad OUT; 3 the credentials were
rejected; 4 gone from the server (404), changed (with --if-match), a checksum
mismatch or another server failure; 5 writing OUT failed.

Examples:
  host-runner download -c nc.toml --path \"/Reports 2024/Q1.pdf\" -o q1.pdf
  host-runner download -c nc.toml --id 183 -o - | sha1sum
  host-runner download -c nc.toml --id 183 -o big.iso --resume --if-match --json";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("record").required(true).args(["id", "path"])))]
struct DownloadArgs {
    /// The TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// The record's external id (Nextcloud's file id), as `records --json` shows it.
    #[arg(long, value_name = "FILEID")]
    id: Option<String>,
    /// The record's path in the account, as `records` shows it (e.g. "/Reports 2024/Q1.pdf").
    #[arg(long, value_name = "PATH")]
    path: Option<String>,
    /// Where to write: a file, a directory, or `-` for stdout [default: the
    /// file's name in the current directory].
    #[arg(long, short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
    /// Continue OUT.part where an interrupted download stopped; keep it if
    /// this transfer breaks too.
    #[arg(long)]
    resume: bool,
    /// Refuse to download a file that changed on the server since the last sync.
    #[arg(long)]
    if_match: bool,
    /// Print a JSON summary on stdout instead of text (not with `-o -`).
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

/// Crates whose logs could carry the credential.
const SILENT_TARGETS: [&str; 3] = ["ureq", "ureq_proto", "rustls"];

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,host_runner=info,connector=info")
    });
    // The HTTP stack logs request heads, `Authorization` included, at trace
    // level: it stays silent whatever RUST_LOG asks for.
    let filter = SILENT_TARGETS.iter().fold(filter, |f, target| {
        f.add_directive(format!("{target}=off").parse().expect("a valid directive"))
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
        Command::Sync(a) | Command::Records(a) | Command::TestConnection(a) | Command::Run(a) => {
            a.json
        }
        Command::Demo(a) => a.json,
        Command::Download(a) => a.json,
        Command::Inspect(a) => a.json,
        Command::Status(a) => a.json,
        Command::Changes(a) => match &a.action {
            Some(ChangesAction::Ack(ack)) => ack.json,
            None => a.json,
        },
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
            // The text may carry what the connector said: no raw escape
            // sequence reaches the terminal.
            let message = format!("{e:#}");
            let lines: Vec<_> = message.lines().map(render::printable).collect();
            eprintln!("error: {}", lines.join("\n"));
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
        Error::Busy(_) => "busy",
    }
}

fn changes(args: ChangesArgs) -> anyhow::Result<()> {
    if let Some(ChangesAction::Ack(a)) = args.action {
        let config = ConfigFile::load_account(&a.config, a.account.as_deref())?;
        let position = crate::changes::ack(&config, &a.consumer, a.seq)?;
        if a.json {
            print_json(&serde_json::json!({ "consumer": a.consumer, "position": position }))?;
        } else {
            println!("consumer {} is at change {position}", a.consumer);
        }
        return Ok(());
    }
    let path = args
        .config
        .expect("clap requires --config without a subcommand");
    let config = ConfigFile::load_account(&path, args.account.as_deref())?;
    let options = crate::changes::ChangesOptions {
        from: match args.consumer {
            Some(name) => crate::changes::From::Consumer(name),
            None => crate::changes::From::Since(args.since.unwrap_or(0)),
        },
        limit: args.limit,
        follow: args.follow,
        ack: args.ack,
    };
    let stop = crate::stop::StopFlag::new();
    if args.follow {
        stop.set_on_signals()?;
    }
    crate::changes::changes(
        &config,
        &options,
        args.json,
        &mut std::io::stdout().lock(),
        &stop,
    )?;
    Ok(())
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
            let config = ConfigFile::load_account(&args.config, args.account.as_deref())?;
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
            let config = ConfigFile::load_account(&args.config, args.account.as_deref())?;
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
            let config = ConfigFile::load_account(&args.config, args.account.as_deref())?;
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
        Command::Run(args) => {
            if args.account.is_some() {
                return Err(Error::Config(
                    "`run` syncs every account of the file; `--account` is for the other commands"
                        .into(),
                )
                .into());
            }
            crate::schedule::run_command(&args.config, component, args.json)?;
        }
        Command::Download(args) => download(args, component)?,
        Command::Changes(args) => changes(args)?,
        Command::Status(args) => {
            let file = ConfigFile::load(&args.config)?;
            let statuses = crate::status::status(&file);
            if args.json {
                print_json(&statuses)?;
            } else {
                print!("{}", crate::status::render(&statuses));
            }
        }
        Command::Inspect(args) => {
            let config = args
                .config
                .map(|path| ConfigFile::load_account(&path, args.account.as_deref()))
                .transpose()?;
            let path = crate::runtime::locate_component(component.as_deref())?;
            let inspection = crate::inspect::inspect(&path, config.as_ref())?;
            if args.json {
                print_json(&inspection)?;
            } else {
                print!("{}", crate::inspect::render(&inspection));
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

fn download(args: DownloadArgs, component: Option<PathBuf>) -> anyhow::Result<()> {
    use crate::download::{DownloadOptions, Output, Select};
    let output = match args.output {
        Some(p) if p.as_os_str() == "-" => Output::Stdout,
        Some(p) => Output::File(p),
        None => Output::Default,
    };
    if args.json && output == Output::Stdout {
        return Err(
            Error::Config("--json and `-o -` would both write to stdout; pick one".into()).into(),
        );
    }
    let select = match (args.id, args.path) {
        (Some(id), _) => Select::Id(id),
        (None, Some(path)) => Select::Path(path),
        (None, None) => unreachable!("clap requires --id or --path"),
    };
    let config = Config::load(&args.config)?;
    let to_stdout = output == Output::Stdout;
    let options = DownloadOptions {
        select,
        output,
        resume: args.resume,
        if_match: args.if_match,
        progress: true,
    };
    let run = RunOptions {
        component,
        ..RunOptions::default()
    };
    let report = crate::download::download(&config, &run, &options)?;
    if args.json {
        print_json(&report)?;
    } else if to_stdout {
        crate::download::to_stderr(&crate::download::render(&report));
    } else {
        print!("{}", crate::download::render(&report));
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
            "8  another sync",
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
        let cli = Cli::try_parse_from(["host-runner", "run", "-c", "a.toml", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Run(ConfigArgs {
                json: true,
                account: None,
                ..
            })
        ));
        let cli = Cli::try_parse_from(["host-runner", "sync", "-c", "a.toml", "--account", "bob"])
            .unwrap();
        assert!(
            matches!(cli.command, Command::Sync(ConfigArgs { account: Some(ref a), .. }) if a == "bob")
        );
    }

    #[test]
    fn download_parses_one_of_id_or_path() {
        let cli = Cli::try_parse_from([
            "host-runner",
            "download",
            "-c",
            "a.toml",
            "--path",
            "/Reports 2024/Q1 résumé #1 & 100% (final)?.pdf",
            "-o",
            "-",
            "--resume",
            "--if-match",
        ])
        .unwrap();
        let Command::Download(args) = cli.command else {
            panic!("not a download")
        };
        assert_eq!(
            args.path.as_deref(),
            Some("/Reports 2024/Q1 résumé #1 & 100% (final)?.pdf")
        );
        assert_eq!(args.output, Some(PathBuf::from("-")));
        assert!(args.resume && args.if_match && !args.json && args.id.is_none());
        assert!(
            Cli::try_parse_from(["host-runner", "download", "-c", "a.toml"]).is_err(),
            "--id or --path is required"
        );
        assert!(
            Cli::try_parse_from([
                "host-runner",
                "download",
                "-c",
                "a.toml",
                "--id",
                "1",
                "--path",
                "/a"
            ])
            .is_err(),
            "not both"
        );
    }
}
