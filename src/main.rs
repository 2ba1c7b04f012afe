//! The `keysmith` command: the operator process and its command-line tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generates and manages secret material for Kubernetes through custom resources.
#[derive(Debug, Parser)]
#[command(name = "keysmith", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
