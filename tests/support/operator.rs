//! The operator under test, scoped to one namespace so tests running side by side never
//! share an operator: in-process (fast, on its own runtime thread) or as the real `keysmith`
//! binary (its logs captured to a file).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

use keysmith::reconcile::context::Settings;
use keysmith::reconcile::namespaces::WatchedNamespaces;
use keysmith::reconcile::run::{RunConfig, run_until};
use tokio::sync::oneshot;

use super::ControlPlane;
use super::process::Managed;

fn config(namespace: &str) -> RunConfig {
    RunConfig {
        settings: Settings {
            key_namespace: namespace.to_owned(),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            namespaces: WatchedNamespaces::new([namespace]),
            ..Settings::default()
        },
        concurrency: 4,
        metrics_addr: "127.0.0.1:0".parse().expect("address"),
        health_addr: "127.0.0.1:0".parse().expect("address"),
        leader_election: None,
    }
}

/// The operator running in this process; stopped gracefully when dropped.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Operator {
    /// Starts the operator for `namespace` with the operator identity.
    pub fn start(cp: &ControlPlane, namespace: &str) -> Self {
        Self::start_with(cp, namespace, |_| {})
    }

    /// Like [`Operator::start`], with `adjust` changing the configuration first (e.g. a
    /// default issuer).
    pub fn start_with(
        cp: &ControlPlane,
        namespace: &str,
        adjust: impl FnOnce(&mut RunConfig),
    ) -> Self {
        // KEYSMITH_TEST_LOG=<filter> shows the in-process operators' logs (debugging only).
        if let Ok(filter) = std::env::var("KEYSMITH_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let mut config = config(namespace);
        adjust(&mut config);
        let client_config = cp.operator_config.clone();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("operator-{namespace}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("operator runtime");
                runtime.block_on(async move {
                    let client = kube::Client::try_from(client_config).expect("operator client");
                    let stop = async move {
                        let _ = stop_rx.await;
                    };
                    run_until(client, config, stop).await.expect("operator ran");
                });
            })
            .expect("operator thread");
        Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the operator and waits until it has shut down.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The real `keysmith run` binary as a child process, logging at trace level to a file.
pub struct OperatorProcess {
    process: Managed,
    log: PathBuf,
}

impl OperatorProcess {
    /// Starts `keysmith run --namespaces <namespace>` with the operator identity, writing its
    /// logs (`RUST_LOG=trace`, text format) to `log`.
    pub fn start(cp: &ControlPlane, namespace: &str, log: &Path) -> Self {
        Self::start_on(cp, namespace, log, 0, 0)
    }

    /// Like [`OperatorProcess::start`], with `extra` flags (e.g. `--leader-elect`).
    pub fn start_with(cp: &ControlPlane, namespace: &str, log: &Path, extra: &[&str]) -> Self {
        Self::spawn(cp.operator_kubeconfig(), namespace, log, (0, 0), extra)
    }

    /// Like [`OperatorProcess::start`], logging at `info` instead of `trace`: for tests that
    /// run many resources, where trace logging would dominate the run.
    pub fn start_quiet(cp: &ControlPlane, namespace: &str, log: &Path) -> Self {
        let mut cmd = Self::command(cp.operator_kubeconfig(), namespace, (0, 0), &[]);
        cmd.env("RUST_LOG", "info");
        Self::from_command(cmd, log)
    }

    /// Like [`OperatorProcess::start_with`], with the identity of `kubeconfig` instead of the
    /// operator's, and /metrics and the probes on these ports of 127.0.0.1. `namespace` is
    /// the key namespace and the first of `--namespaces` (`extra` may add more).
    pub fn start_as(
        kubeconfig: &Path,
        namespace: &str,
        log: &Path,
        ports: (u16, u16),
        extra: &[&str],
    ) -> Self {
        Self::spawn(kubeconfig, namespace, log, ports, extra)
    }

    /// Like [`OperatorProcess::start`], serving /metrics and the probes on these ports of
    /// 127.0.0.1 (0: any free port).
    pub fn start_on(
        cp: &ControlPlane,
        namespace: &str,
        log: &Path,
        metrics_port: u16,
        health_port: u16,
    ) -> Self {
        let ports = (metrics_port, health_port);
        Self::spawn(cp.operator_kubeconfig(), namespace, log, ports, &[])
    }

    fn spawn(
        kubeconfig: &Path,
        namespace: &str,
        log: &Path,
        ports: (u16, u16),
        extra: &[&str],
    ) -> Self {
        Self::from_command(Self::command(kubeconfig, namespace, ports, extra), log)
    }

    /// `keysmith run` on `namespace` with the test defaults, logging at trace level.
    fn command(
        kubeconfig: &Path,
        namespace: &str,
        (metrics_port, health_port): (u16, u16),
        extra: &[&str],
    ) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keysmith"));
        cmd.arg("run")
            .arg(format!("--namespaces={namespace}"))
            .arg(format!("--key-namespace={namespace}"))
            .arg(format!("--metrics-bind-address=127.0.0.1:{metrics_port}"))
            .arg(format!("--health-bind-address=127.0.0.1:{health_port}"))
            .arg("--backoff-min=1s")
            .arg("--backoff-max=10s")
            .arg("--generate-slots=1")
            .arg("--log-format=text")
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "trace")
            .env_remove("POD_NAMESPACE");
        cmd
    }

    fn from_command(cmd: Command, log: &Path) -> Self {
        let process = Managed::spawn("keysmith", cmd, log).expect("start keysmith");
        Self {
            process,
            log: log.to_owned(),
        }
    }

    /// `keysmith run` with exactly `args` (no defaults added) as the identity of `kubeconfig`,
    /// logging at trace level (text format unless `args` say otherwise) to `log`.
    pub fn start_exactly(kubeconfig: &Path, log: &Path, args: &[String]) -> Self {
        let binary = Path::new(env!("CARGO_BIN_EXE_keysmith"));
        Self::start_binary(binary, kubeconfig, log, args, "trace")
    }

    /// Like [`OperatorProcess::start_exactly`], running `binary` (e.g. a release build, for
    /// benchmarks) with `RUST_LOG=rust_log`.
    pub fn start_binary(
        binary: &Path,
        kubeconfig: &Path,
        log: &Path,
        args: &[String],
        rust_log: &str,
    ) -> Self {
        let mut cmd = Command::new(binary);
        cmd.arg("run")
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", rust_log)
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME");
        Self::from_command(cmd, log)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the operator logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to 30 s for a clean exit; returns whether it exited 0.
    pub fn terminate(mut self) -> bool {
        self.process.terminate(Duration::from_secs(30))
    }
}
