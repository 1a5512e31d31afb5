//! The command line: argument parsing (clap) and dispatch to the library. Commands
//! print for people; the work is done by the layers they call.

mod connectors;
mod plugin;
mod topics;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::broker::server::{BrokerSettings, RunningBroker};

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
    /// Run a standalone worker: the integrated broker, the plugins and the connectors of
    /// the given JSON files, until SIGTERM or Ctrl-C.
    Standalone {
        /// The worker config (.properties, Kafka Connect's keys).
        worker_config: PathBuf,
        /// Connector configs (JSON), created at start unless they exist unchanged.
        connector_configs: Vec<PathBuf>,
        /// A folder of connector configs (*.json) kept in step with the connectors: a file
        /// added, changed or removed creates, updates or deletes its connector (overrides
        /// the worker config's connectors.dir).
        #[arg(long, value_name = "DIR")]
        connectors_dir: Option<PathBuf>,
    },
    /// Run a distributed worker: join the Connect cluster named by group.id on the Kafka
    /// cluster of bootstrap.servers, and run the share of connectors and tasks it is
    /// assigned, until SIGTERM or Ctrl-C.
    Distributed {
        /// The worker config (.properties, Kafka Connect's keys; bootstrap.servers and
        /// group.id are required).
        worker_config: PathBuf,
    },
    /// Run the integrated broker on a data directory until SIGTERM or Ctrl-C.
    Broker(BrokerArgs),
    /// Manage topics on a data directory directly (the broker must not be running on it).
    Topics(topics::TopicsArgs),
    /// Inspect connector plugins on a plugin path, locally (no worker needed); see
    /// `plugins list` for what a running worker has loaded.
    Plugin(plugin::PluginArgs),
    /// Manage the connectors of a running worker through its REST API.
    Connectors(connectors::ConnectorsArgs),
    /// The connector plugins a running worker has loaded, through its REST API; see
    /// `plugin list` to scan a plugin path locally.
    Plugins(connectors::PluginsArgs),
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
    /// Produce and consume with kcat over loopback beside librdkafka's mock broker; latency.
    Produce(crate::bench::produce::ProduceBenchArgs),
    /// The worker end to end: DataGen → log → FileStreamSink, on disk and CPU-only.
    Pipeline(crate::bench::pipeline::PipelineBenchArgs),
    /// Records through the noop plugin's source and sink tasks beside the same code in-process.
    Plugin(crate::bench::plugin::PluginBenchArgs),
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// Append forever, printing each acknowledged offset range (for SIGKILL tests).
    CrashWriter(crate::debug::CrashWriterArgs),
}

/// Where the broker keeps its data, where it listens, and how it is tuned.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    /// The data directory (Kafka's log.dirs).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where to serve the Kafka protocol (port 0 picks a free port; the bound address is printed).
    #[arg(long)]
    listen: Option<String>,
    /// The host:port clients are told to connect to (default: the bound address).
    #[arg(long)]
    advertised_listener: Option<String>,
    /// A broker .properties file (Kafka's broker keys: log.segment.bytes, log.retention.hours, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Set one broker key, overriding the file: --override log.flush.interval.messages=1
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl BrokerArgs {
    /// Build the settings: defaults, then the file, then overrides, then flags.
    pub fn settings(&self) -> anyhow::Result<BrokerSettings> {
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
        if let Some(dir) = &self.data_dir {
            props.insert("log.dirs".into(), dir.display().to_string());
        }
        if let Some(listen) = &self.listen {
            props.insert("listeners".into(), listen.clone());
        }
        if let Some(adv) = &self.advertised_listener {
            props.insert("advertised.listeners".into(), adv.clone());
        }
        let mut settings = BrokerSettings::new("./data");
        for key in settings.apply(&props)? {
            tracing::warn!(%key, "unknown broker config key ignored");
        }
        Ok(settings)
    }
}

/// Parse arguments, run the command, map errors to a message and exit code 1.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Standalone {
            worker_config,
            connector_configs,
            connectors_dir,
        } => crate::worker::standalone::run(
            &worker_config,
            &connector_configs,
            connectors_dir.as_deref(),
        ),
        Command::Distributed { worker_config } => crate::worker::distributed::run(&worker_config),
        Command::Broker(args) => run_broker(&args),
        Command::Topics(args) => topics::run(args),
        Command::Plugin(args) => plugin::run(args),
        Command::Connectors(args) => connectors::run_connectors(args),
        Command::Plugins(args) => connectors::run_plugins(args),
        Command::Bench {
            which: BenchCommand::Log(args),
        } => crate::bench::log::run(&args),
        Command::Bench {
            which: BenchCommand::Produce(args),
        } => crate::bench::produce::run(&args),
        Command::Bench {
            which: BenchCommand::Pipeline(args),
        } => crate::bench::pipeline::run(&args),
        Command::Bench {
            which: BenchCommand::Plugin(args),
        } => crate::bench::plugin::run(&args),
        Command::Debug {
            which: DebugCommand::CrashWriter(args),
        } => crate::debug::crash_writer(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr, reason = "the one place errors reach the user")]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    // Levels can change at run time through the REST API (/admin/loggers).
    crate::rest::loggers::init();
}

fn run_broker(args: &BrokerArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    crate::process::runtime()?.block_on(async {
        let running = RunningBroker::start(settings).await?;
        // One line on stdout that scripts and tests can wait for.
        println!("tributary broker listening on {}", running.addr);
        crate::process::terminated().await?;
        tracing::info!("shutting down: closing connections, flushing every partition");
        running.stop().await?;
        tracing::info!("clean shutdown");
        Ok(())
    })
}
