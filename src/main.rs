//! The `keysmith` command: the operator process and its command-line tools.

use clap::Parser;

/// Generates and manages secret material for Kubernetes through custom resources.
#[derive(Debug, Parser)]
#[command(name = "keysmith", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
