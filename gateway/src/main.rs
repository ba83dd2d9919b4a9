//! The `jingle-sip-gateway` binary: arguments, logging, the tokio runtime, then
//! [`gateway::run()`] until SIGTERM or SIGINT (STYLE.md R6).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgAction, Parser};
use gateway::config::{self, Config};
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

/// An XMPP component (XEP-0114) that bridges Jingle calls to SIP trunks.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The configuration file; `JSG__SECTION__KEY` environment variables override its keys.
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Check FILE (with the environment's overrides), print every problem one per line,
    /// and exit: 0 when it is valid, 1 otherwise.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Log more: -v debug, -vv trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Log less: -q warnings, -qq errors only (RUST_LOG, when set, wins).
    #[arg(short, long, action = ArgAction::Count)]
    quiet: u8,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.check_config {
        Some(file) => check(file),
        None => serve(&args).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("Error: {e:#}");
        ExitCode::FAILURE
    })
}

/// The process environment, for `JSG__…` overrides (non-UTF-8 variables are skipped).
fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// `--check-config FILE`: every problem on its own line, or a one-line summary.
fn check(file: &Path) -> anyhow::Result<ExitCode> {
    match Config::load(file, environment()) {
        Ok(config) => println!("{}: OK: {}", file.display(), config.summary()),
        Err(config::Error::Invalid(problems)) => {
            problems.problems.iter().for_each(|p| println!("{p}"));
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config, environment())?;
    let level = match (args.verbose, args.quiet) {
        (0, 0) => config.log.level.as_str(),
        (1, _) => "debug",
        (2.., _) => "trace",
        (_, 1) => "warn",
        (_, 2..) => "error",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(rust_log) if !rust_log.is_empty() => {
            EnvFilter::try_new(&rust_log).context("RUST_LOG")?
        }
        _ => EnvFilter::try_new(config.log.directives(level)).context("log level")?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name("jsg-worker")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutdown requested");
        };
        Ok(gateway::run(config, shutdown).await?)
    })
}
