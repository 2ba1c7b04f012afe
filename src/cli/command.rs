//! The `keysmith` command line: its clap definitions and the handler of each command (the
//! operator process, `crds`, `status`, `rotate`, `inspect`, `generate`, `dhparam`).
//! `src/main.rs` only sets the allocator and calls [`main`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::reconcile::context::Settings;
use crate::reconcile::leader::LeaderElection;
use crate::reconcile::namespaces::{WatchedNamespaces, parse_namespace};
use clap::{Parser, Subcommand};

use crate::reconcile::run::{RunConfig, run};
use crate::telemetry::{self, LogFormat};

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
    Run(Box<RunArgs>),
    /// Write the CustomResourceDefinitions, one YAML file per kind.
    Crds {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = "crds")]
        output_dir: PathBuf,
        /// Print all CRDs to standard output as one multi-document YAML stream instead.
        #[arg(long, conflicts_with = "output_dir")]
        stdout: bool,
    },
    /// Show what every keysmith resource reports: Ready, fingerprint, expiry, next
    /// rotation and the last error.
    Status {
        /// Namespace (default: the kubeconfig's); ignored with --all-namespaces.
        #[arg(short, long)]
        namespace: Option<String>,
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// One resource, as kind/name (e.g. ckp/web, krs/vpn-psk).
        target: Option<String>,
    },
    /// Ask for new material now: sets the keysmith.dev/rotate annotation of kind/name.
    Rotate {
        /// Namespace (default: the kubeconfig's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// The resource, as kind/name (e.g. ckp/web, sshkey/deploy).
        target: String,
    },
    /// Describe the material of a Secret: certificates and their chain, key types, SSH keys
    /// and certificates, fingerprints; never a private key, passphrase or other secret value.
    Inspect {
        #[command(subcommand)]
        what: Inspected,
    },
    /// Print the Secrets the operator would create for the keysmith resources of a file,
    /// generated offline by the controllers' own code (no kubeconfig, no cluster).
    Generate {
        /// File of keysmith resources (multi-document YAML; `-` reads standard input).
        /// Secrets and KeyManagers in it may be referred to; repeatable.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
        /// Namespace of the objects that name none.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// The operator's --default-issuer: the CA CertificateKeyPair (<namespace>/<name>,
        /// in the input) that signs KeyringSecret certificates without an issuerRef.
        #[arg(long, value_parser = parse_object_key)]
        default_issuer: Option<(String, String)>,
    },
    /// Generate fresh DH parameters (a safe prime, generator 2) as PKCS#3 PEM on standard
    /// output, as a KeyringSecret with `group: Generate` does (like `openssl dhparam`).
    Dhparam {
        /// Prime size in bits: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
    },
}

/// What `keysmith inspect` describes.
#[derive(Debug, Subcommand)]
enum Inspected {
    /// A Secret, by name (any Secret: keysmith's are described fully, others by their keys
    /// and sizes).
    Secret {
        /// Name of the Secret.
        name: String,
        /// Namespace (default: the kubeconfig's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
}

/// How a report is printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OutputFormat {
    /// For people.
    Text,
    /// For programs.
    Json,
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
    /// Watch resources of these namespaces only, comma-separated or repeated (default, or
    /// empty: every namespace). With a list the operator makes no cluster-wide request:
    /// namespaced Roles in these namespaces (and the key namespace) are all it needs.
    /// References (issuerRef, --default-issuer) into other namespaces are refused.
    /// `--namespace` is a deprecated alias.
    #[arg(
        long,
        alias = "namespace",
        value_name = "NAMESPACE,...",
        value_delimiter = ',',
        value_parser = parse_namespace
    )]
    namespaces: Vec<String>,
    /// The CA CertificateKeyPair, as <namespace>/<name>, that signs KeyringSecret
    /// certificates without an issuerRef (default: they are self-signed).
    #[arg(long, value_parser = parse_object_key)]
    default_issuer: Option<(String, String)>,
    /// Longest a slow generation (fresh DH parameters, RSA 8192 keys) may run (Go duration).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    generate_timeout: Duration,
    /// How long a restored resource (it carries keysmith's finalizer but no status) waits for
    /// its Secret to be restored before new material is made (Go duration).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    restore_grace: Duration,
    /// Run the controllers only while holding a coordination Lease (for several replicas).
    #[arg(long)]
    leader_elect: bool,
    /// Namespace of the leader election Lease (default: --key-namespace).
    #[arg(long)]
    leader_election_namespace: Option<String>,
    /// Name of the leader election Lease.
    #[arg(long, default_value = "keysmith-leader")]
    leader_election_lease_name: String,
    /// How long the Lease is valid without renewal: the longest a failover takes.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_election_lease_duration: Duration,
    /// This replica's identity in the Lease (default: $POD_NAME, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    leader_election_identity: Option<String>,
    /// Most slow generations running at once (default: one less than the CPUs, at least 1).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    generate_slots: Option<u16>,
    /// Log line format.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = crate::api::duration::parse(text)?;
    if parsed.is_negative() {
        return Err("must not be negative".to_owned());
    }
    Ok(Duration::from(parsed))
}

/// `<namespace>/<name>`, both DNS names.
fn parse_object_key(text: &str) -> Result<(String, String), String> {
    let (namespace, name) = text
        .split_once('/')
        .ok_or_else(|| "must be <namespace>/<name>".to_owned())?;
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !valid(namespace) || !valid(name) {
        return Err("must be <namespace>/<name> with lowercase DNS names".to_owned());
    }
    Ok((namespace.to_owned(), name.to_owned()))
}

/// `<host name>-<process id>`: unique among replicas without a pod name.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "keysmith".to_owned());
    format!("{host}-{}", std::process::id())
}

/// One less than the CPUs, at least one: a slow generation never takes the last core.
fn default_generate_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

/// Parses the command line and runs the command; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_operator(*args),
        Command::Crds { output_dir, stdout } => write_crds(&output_dir, stdout),
        Command::Dhparam { bits } => generate_dhparam(bits),
        Command::Status {
            namespace,
            all_namespaces,
            target,
        } => show_status(namespace, all_namespaces, target),
        Command::Rotate { namespace, target } => request_rotation(namespace, &target),
        Command::Inspect {
            what:
                Inspected::Secret {
                    name,
                    namespace,
                    output,
                },
        } => inspect_secret(&name, namespace, output),
        Command::Generate {
            files,
            namespace,
            default_issuer,
        } => generate_secrets(&files, &namespace, default_issuer),
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
    let namespaces = WatchedNamespaces::new(args.namespaces);
    check_default_issuer(args.default_issuer.as_ref(), &namespaces)?;
    let leader_election = args.leader_elect.then(|| LeaderElection {
        namespace: args
            .leader_election_namespace
            .clone()
            .unwrap_or_else(|| args.key_namespace.clone()),
        lease_name: args.leader_election_lease_name.clone(),
        identity: args
            .leader_election_identity
            .clone()
            .unwrap_or_else(default_identity),
        duration: args.leader_election_lease_duration,
        grace: args.leader_election_lease_duration / 3,
    });
    let config = RunConfig {
        settings: Settings {
            key_namespace: args.key_namespace,
            backoff_min: args.backoff_min,
            backoff_max: args.backoff_max,
            default_issuer: args.default_issuer,
            generate_timeout: args.generate_timeout,
            generate_slots: args
                .generate_slots
                .map_or_else(default_generate_slots, usize::from),
            namespaces,
            restore_grace: args.restore_grace,
        },
        concurrency: args.concurrency,
        metrics_addr: args.metrics_bind_address,
        health_addr: args.health_bind_address,
        leader_election,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(config));
    // A key generation that cannot be interrupted (RSA) may still be running on a blocking
    // thread: its result is discarded anyway, so do not wait for it long.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result?;
    Ok(())
}

/// The default CA must lie in a watched namespace: the operator reads nothing elsewhere.
fn check_default_issuer(
    default_issuer: Option<&(String, String)>,
    namespaces: &WatchedNamespaces,
) -> Result<(), String> {
    match default_issuer {
        Some((namespace, name)) if !namespaces.contains(namespace) => Err(format!(
            "--default-issuer {namespace}/{name} is outside --namespaces {namespaces}"
        )),
        _ => Ok(()),
    }
}

/// A client from the kubeconfig (or in-cluster config) and its default namespace.
async fn client() -> Result<(kube::Client, String), Box<dyn std::error::Error>> {
    let config = kube::Config::infer().await?;
    let namespace = config.default_namespace.clone();
    Ok((kube::Client::try_from(config)?, namespace))
}

fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, Box<dyn std::error::Error>>>,
) -> Result<T, Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

fn show_status(
    namespace: Option<String>,
    all_namespaces: bool,
    target: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let target = target
        .as_deref()
        .map(crate::cli::parse_target)
        .transpose()?;
    block_on(async {
        let (client, default_namespace) = client().await?;
        let namespace = namespace.unwrap_or(default_namespace);
        let scope = (!all_namespaces || target.is_some()).then_some(namespace.as_str());
        let rows = crate::cli::status(&client, scope, target).await?;
        print!("{}", crate::cli::render(&rows, scope.is_none()));
        Ok(())
    })
}

fn request_rotation(
    namespace: Option<String>,
    target: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let target = crate::cli::parse_target(target)?;
    let shown = format!("{}/{}", target.0.short, target.1);
    block_on(async {
        let (client, default_namespace) = client().await?;
        let namespace = namespace.unwrap_or(default_namespace);
        let token = jiff::Timestamp::now().to_string();
        let token = crate::cli::rotate(&client, &namespace, target, token).await?;
        println!(
            "{shown}: rotation requested ({} = {token})",
            crate::reconcile::resource::ROTATE_ANNOTATION
        );
        Ok(())
    })
}

/// Reads Secret `name` and prints what its material is.
fn inspect_secret(
    name: &str,
    namespace: Option<String>,
    output: OutputFormat,
) -> Result<(), Box<dyn std::error::Error>> {
    use crate::cli::inspect;
    block_on(async {
        let (client, default_namespace) = client().await?;
        let namespace = namespace.unwrap_or(default_namespace);
        let fetched = inspect::fetch(&client, &namespace, name).await?;
        let report = inspect::report(
            &fetched.secret,
            &fetched.pkcs12_password,
            std::time::SystemTime::now(),
        );
        match output {
            OutputFormat::Text => print!("{}", inspect::text::render(&report)),
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        }
        Ok(())
    })
}

/// Reads `files` (`-`: standard input), prints the Secret of every resource that can be
/// generated and reports every one that cannot; fails when any cannot.
fn generate_secrets(
    files: &[String],
    namespace: &str,
    default_issuer: Option<(String, String)>,
) -> Result<(), Box<dyn std::error::Error>> {
    use crate::cli::generate::{self, Input, Options};
    let mut input = Input::default();
    for file in files {
        let text = if file == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))?
        } else {
            std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?
        };
        input.add(&text, namespace);
    }
    let mut failures = input.errors.len();
    for error in &input.errors {
        eprintln!("keysmith: {error}");
    }
    if input.resources.is_empty() && failures == 0 {
        return Err("the input holds no keysmith resource that writes a Secret".into());
    }
    let options = Options {
        default_issuer,
        now: std::time::SystemTime::now(),
    };
    let mut documents = Vec::new();
    for generated in generate::generate(&input, &options) {
        let yaml = generated
            .result
            .map_err(|e| e.to_string())
            .and_then(|secret| generate::to_yaml(&secret).map_err(|e| e.to_string()));
        match yaml {
            Ok(yaml) => documents.push(yaml),
            Err(e) => {
                eprintln!("keysmith: {}: {e}", generated.resource);
                failures += 1;
            }
        }
    }
    print!("{}", documents.join("---\n"));
    if failures > 0 {
        return Err(format!("{failures} of the input's objects could not be generated").into());
    }
    Ok(())
}

fn generate_dhparam(bits: u32) -> Result<(), Box<dyn std::error::Error>> {
    let progress = crate::material::progress::Progress::default();
    print!("{}", crate::material::dh::generate(bits, &progress)?);
    Ok(())
}

fn write_crds(dir: &Path, stdout: bool) -> Result<(), Box<dyn std::error::Error>> {
    let files = crate::api::render_crds()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(flags: &[&str]) -> Result<RunArgs, clap::Error> {
        let args = ["keysmith", "run"].iter().chain(flags);
        match Cli::try_parse_from(args)?.command {
            Command::Run(args) => Ok(*args),
            _ => unreachable!("parsed `run`"),
        }
    }

    #[test]
    fn namespaces_are_comma_separated_or_repeated() {
        let args = run_args(&["--namespaces=a,b", "--namespaces", "c"]).expect("parses");
        assert_eq!(args.namespaces, ["a", "b", "c"]);
        assert!(run_args(&[]).expect("parses").namespaces.is_empty());
    }

    #[test]
    fn namespace_is_a_deprecated_alias() {
        let args = run_args(&["--namespace=shop"]).expect("parses");
        assert_eq!(args.namespaces, ["shop"]);
    }

    #[test]
    fn an_empty_namespaces_flag_means_all() {
        let args = run_args(&["--namespaces="]).expect("parses");
        assert_eq!(
            WatchedNamespaces::new(args.namespaces),
            WatchedNamespaces::All
        );
    }

    #[test]
    fn namespaces_must_be_dns_labels() {
        assert!(run_args(&["--namespaces=a,Bad"]).is_err());
        assert!(run_args(&["--namespaces=a/b"]).is_err());
    }

    #[test]
    fn the_default_issuer_must_be_watched() {
        let issuer = ("pki".to_owned(), "ca".to_owned());
        let only = WatchedNamespaces::new(["shop"]);
        assert!(check_default_issuer(Some(&issuer), &only).is_err());
        assert!(check_default_issuer(Some(&issuer), &WatchedNamespaces::new(["pki"])).is_ok());
        assert!(check_default_issuer(Some(&issuer), &WatchedNamespaces::All).is_ok());
        assert!(check_default_issuer(None, &only).is_ok());
    }
}
