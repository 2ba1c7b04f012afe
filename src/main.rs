//! The `keysmith` command: the operator process and its command-line tools.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use keysmith::reconcile::context::Settings;
use keysmith::reconcile::run::{RunConfig, run};
use keysmith::telemetry::{self, LogFormat};

/// Generates and manages secret material for Kubernetes through custom resources.
#[derive(Debug, Parser)]
#[command(name = "keysmith", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator: every controller, /metrics, /healthz and /readyz.
    Run(RunArgs),
    /// Write the CustomResourceDefinitions, one YAML file per kind.
    Crds {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = "crds")]
        output_dir: PathBuf,
        /// Print all CRDs to standard output as one multi-document YAML stream instead.
        #[arg(long, conflicts_with = "output_dir")]
        stdout: bool,
    },
}

/// Flags of `keysmith run` (api.md section 6).
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Namespace of the Secrets holding non-exportable keys (privateKeyExport: Denied).
    #[arg(long, env = "POD_NAMESPACE", default_value = "keysmith-system")]
    key_namespace: String,
    /// Most reconciles running at once per kind.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Address of the Prometheus endpoint /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_bind_address: SocketAddr,
    /// Address of /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_bind_address: SocketAddr,
    /// Shortest retry delay after a failure (Go duration, e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    backoff_min: Duration,
    /// Longest retry delay after repeated failures (Go duration, e.g. 5m).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    backoff_max: Duration,
    /// Watch resources of this namespace only (default: every namespace).
    #[arg(long)]
    namespace: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: kube::core::Duration = text.parse().map_err(|e| format!("{e}"))?;
    if parsed.is_negative() {
        return Err("must not be negative".to_owned());
    }
    Ok(Duration::from(parsed))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_operator(args),
        Command::Crds { output_dir, stdout } => write_crds(&output_dir, stdout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keysmith: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_operator(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init(args.log_format);
    if args.backoff_min > args.backoff_max {
        return Err("--backoff-min must not exceed --backoff-max".into());
    }
    let config = RunConfig {
        settings: Settings {
            key_namespace: args.key_namespace,
            backoff_min: args.backoff_min,
            backoff_max: args.backoff_max,
        },
        concurrency: args.concurrency,
        metrics_addr: args.metrics_bind_address,
        health_addr: args.health_bind_address,
        namespace: args.namespace,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config))?;
    Ok(())
}

fn write_crds(dir: &Path, stdout: bool) -> Result<(), Box<dyn std::error::Error>> {
    let files = keysmith::api::render_crds()?;
    if stdout {
        let docs: Vec<String> = files.into_iter().map(|(_, yaml)| yaml).collect();
        print!("{}", docs.join("---\n"));
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for (file, yaml) in files {
        let path = dir.join(file);
        std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
