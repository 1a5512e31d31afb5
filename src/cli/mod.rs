//! The command line: argument parsing (clap) and dispatch to the library. Commands
//! print for people; the work is done by the layers they call.

mod topics;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::broker::{BrokerConfig, TopicStore};

#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "Kafka Connect-style data integration with an integrated Kafka-compatible broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the integrated broker on a data directory until SIGTERM or Ctrl-C.
    Broker(BrokerArgs),
    /// Manage topics on a data directory directly (the broker must not be running on it).
    Topics(topics::TopicsArgs),
    /// Measure the real code paths against this machine's limits.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Tools for tests and debugging.
    #[command(hide = true)]
    Debug {
        #[command(subcommand)]
        which: DebugCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Append and read back records on one partition; compare with the disk.
    Log(crate::bench::log::LogBenchArgs),
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// Append forever, printing each acknowledged offset range (for SIGKILL tests).
    CrashWriter(crate::debug::CrashWriterArgs),
}

/// Where the broker keeps its data and how it is tuned.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    /// The data directory (Kafka's log.dirs).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// A broker .properties file (Kafka's broker keys: log.segment.bytes, log.retention.hours, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Set one broker key, overriding the file: --override log.flush.interval.messages=1
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl BrokerArgs {
    /// Build the broker config: file first, then overrides; unknown keys are warned about.
    pub fn broker_config(&self) -> anyhow::Result<BrokerConfig> {
        let mut props = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                crate::properties::parse_properties(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => Default::default(),
        };
        for o in &self.overrides {
            let (k, v) = o
                .split_once('=')
                .with_context(|| format!("--override {o:?}: expected KEY=VALUE"))?;
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mut config = BrokerConfig::new(&self.data_dir);
        for key in config.apply(&props)? {
            tracing::warn!(%key, "unknown broker config key ignored");
        }
        Ok(config)
    }
}

/// Parse arguments, run the command, map errors to a message and exit code 1.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Broker(args) => run_broker(&args),
        Command::Topics(args) => topics::run(args),
        Command::Bench {
            which: BenchCommand::Log(args),
        } => crate::bench::log::run(&args),
        Command::Debug {
            which: DebugCommand::CrashWriter(args),
        } => crate::debug::crash_writer(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run_broker(args: &BrokerArgs) -> anyhow::Result<()> {
    let config = args.broker_config()?;
    let store = Arc::new(TopicStore::open(config)?);
    let maintenance = store.start_maintenance();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    tracing::info!(data_dir = %store.config().data_dir.display(), "broker running; SIGTERM or Ctrl-C stops it");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!("shutting down: flushing every partition");
    maintenance.stop();
    store.close()?;
    tracing::info!("clean shutdown");
    Ok(())
}
