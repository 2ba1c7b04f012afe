//! A throwaway Kubernetes control plane for tests, in the spirit of controller-runtime's
//! envtest: etcd + kube-apiserver + kube-controller-manager built from source by
//! `hack/controlplane/build.sh`, started on free 127.0.0.1 ports with fresh certificates.
//!
//! One control plane is shared by all tests of a test binary ([`shared`]); each test takes its
//! own namespace ([`ControlPlane::namespace`]) and its own [`kube::Client`]
//! ([`ControlPlane::client`]: a client is bound to the tokio runtime it was created on, and
//! every `#[tokio::test]` has its own). Nothing outlives the test binary: see [`process`].
//!
//! Environment:
//! - `KEYSMITH_CONTROLPLANE_BIN`: use binaries from this directory instead of `build.sh`;
//! - `KEYSMITH_KEEP_CONTROLPLANE=1`: keep the scratch directory (logs, kubeconfig) on exit.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod audit;
pub mod cluster;
pub mod endpoints;
pub mod helm;
pub mod image;
pub mod kmip;
pub mod node;
pub mod openssl;
pub mod operator;
pub mod pki;
pub mod process;
pub mod proxy;
pub mod sshd;
pub mod velero;
pub mod wait;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use pki::Pki;
use process::Managed;

/// Errors of the harness; tests unwrap them with a message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const START_ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A running etcd + kube-apiserver + kube-controller-manager.
pub struct ControlPlane {
    // Field order is drop order: stop the processes before the directory goes.
    processes: Vec<Managed>,
    dir: ScratchDir,
    kubeconfig: PathBuf,
    config: Config,
    operator_kubeconfig: PathBuf,
    operator_config: Config,
    audit_log: PathBuf,
    bin_dir: PathBuf,
    version: String,
    startup: Duration,
    readyz_after: Duration,
    /// What kube-apiserver was started with, to start it again.
    apiserver: ApiserverSettings,
    /// What the control plane was started for.
    flavor: Flavor,
    /// Set once [`ControlPlane::install_crds`] has installed the CRDs on this control plane.
    crds_installed: tokio::sync::OnceCell<()>,
}

/// The settings kube-apiserver was started with ([`ControlPlane::restart_apiserver`]).
struct ApiserverSettings {
    pki: Pki,
    etcd_port: u16,
    port: u16,
}

/// What a control plane is started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// No node: kube-controller-manager runs only the controllers the tests need (garbage
    /// collection, namespaces, ServiceAccounts and their tokens).
    Plain,
    /// Ready for the real node of [`node`]: the API server authorizes kubelets as nodes
    /// (`Node,RBAC`, `NodeRestriction`) and reaches them on 127.0.0.1 with a client
    /// certificate, and kube-controller-manager runs every controller (Deployments,
    /// ReplicaSets, endpoints, node lifecycle, ...).
    Node,
}

/// Index of kube-apiserver in [`ControlPlane`]'s processes (etcd, kube-apiserver,
/// kube-controller-manager).
const APISERVER: usize = 1;

/// The control plane shared by every test of this test binary, started on first use.
pub fn shared() -> &'static ControlPlane {
    static SHARED: OnceLock<ControlPlane> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cp = ControlPlane::start().unwrap_or_else(|e| panic!("control plane: {e}"));
        cp.dir.remove_at_exit();
        cp
    })
}

impl ControlPlane {
    /// Builds (if needed) and starts a new control plane, owned by the caller and stopped
    /// when dropped. Blocking; may be called from inside an async test.
    pub fn start() -> Result<Self> {
        Self::start_flavor(Flavor::Plain)
    }

    /// Like [`ControlPlane::start`], for a real node ([`node::Node::start`]).
    pub fn start_for_node() -> Result<Self> {
        Self::start_flavor(Flavor::Node)
    }

    fn start_flavor(flavor: Flavor) -> Result<Self> {
        // Readiness is polled with a kube client, which needs a runtime of its own: the
        // caller may already be inside one.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(Self::start_with_retries(flavor))
        })
        .join()
        .map_err(|_| "control plane start-up panicked")?
    }

    async fn start_with_retries(flavor: Flavor) -> Result<Self> {
        let bin_dir = binaries()?;
        let version = pinned_version()?;
        let mut last_error = None;
        for attempt in 1..=START_ATTEMPTS {
            match Self::start_once(&bin_dir, &version, flavor).await {
                Ok(cp) => return Ok(cp),
                Err(e) => {
                    // A free port can be taken between choosing and binding it: try again.
                    eprintln!("control plane start attempt {attempt} failed: {e}");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| "control plane did not start".into()))
    }

    async fn start_once(bin_dir: &Path, version: &str, flavor: Flavor) -> Result<Self> {
        let started = Instant::now();
        let dir = ScratchDir::new()?;
        let pki = Pki::write(dir.path())?;
        let [etcd_client, etcd_peer, apiserver_port, kcm_port] = free_ports()?;
        let mut processes = Vec::new();

        processes.push(start_etcd(bin_dir, dir.path(), etcd_client, etcd_peer)?);
        wait_for_tcp(&mut processes[0], etcd_client).await?;

        processes.push(start_apiserver(
            bin_dir,
            dir.path(),
            &pki,
            etcd_client,
            apiserver_port,
            flavor,
        )?);
        let kubeconfig_text = kubeconfig_json(&pki, apiserver_port, "admin");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, &kubeconfig_text)?;
        let config = Config::from_custom_kubeconfig(
            Kubeconfig::from_yaml(&kubeconfig_text)?,
            &KubeConfigOptions::default(),
        )
        .await?;
        let operator_text = kubeconfig_json(&pki, apiserver_port, pki::OPERATOR_USER);
        let operator_kubeconfig = dir.path().join("operator.kubeconfig");
        std::fs::write(&operator_kubeconfig, &operator_text)?;
        let operator_config = Config::from_custom_kubeconfig(
            Kubeconfig::from_yaml(&operator_text)?,
            &KubeConfigOptions::default(),
        )
        .await?;
        let client = Client::try_from(config.clone())?;
        wait_for_readyz(&mut processes[APISERVER], &client).await?;
        let readyz_after = started.elapsed();

        processes.push(start_controller_manager(
            bin_dir,
            dir.path(),
            &kubeconfig,
            &pki,
            kcm_port,
            flavor,
        )?);
        wait_for_default_service_account(&mut processes, &client).await?;

        let audit_log = dir.path().join("audit.log");
        let cp = Self {
            processes,
            dir,
            kubeconfig,
            config,
            operator_kubeconfig,
            operator_config,
            audit_log,
            bin_dir: bin_dir.to_owned(),
            version: version.to_owned(),
            startup: started.elapsed(),
            readyz_after,
            apiserver: ApiserverSettings {
                pki,
                etcd_port: etcd_client,
                port: apiserver_port,
            },
            flavor,
            crds_installed: tokio::sync::OnceCell::new(),
        };
        eprintln!(
            "control plane {} ready in {:.1}s (apiserver /readyz after {:.1}s; kubeconfig {})",
            cp.version,
            cp.startup.as_secs_f64(),
            cp.readyz_after.as_secs_f64(),
            cp.kubeconfig.display()
        );
        Ok(cp)
    }

    /// Stops kube-apiserver (SIGTERM, as a node drain or upgrade does), keeps it down for
    /// `downtime`, and starts it again with the same settings and port; returns once it is
    /// ready. etcd keeps running, so nothing stored is lost. kube-controller-manager may exit
    /// when it loses its leader lease meanwhile; the harness does not need it afterwards.
    pub async fn restart_apiserver(&mut self, downtime: Duration) -> Result<()> {
        let stopped = self.processes[APISERVER].terminate(Duration::from_secs(30));
        eprintln!("kube-apiserver stopped (clean exit: {stopped}); down for {downtime:?}");
        tokio::time::sleep(downtime).await;
        let settings = &self.apiserver;
        self.processes[APISERVER] = start_apiserver(
            &self.bin_dir,
            self.dir.path(),
            &settings.pki,
            settings.etcd_port,
            settings.port,
            self.flavor,
        )?;
        let client = self.client();
        wait_for_readyz(&mut self.processes[APISERVER], &client).await
    }

    /// A new client for the calling test's runtime.
    pub fn client(&self) -> Client {
        Client::try_from(self.config.clone()).expect("kube client from the harness config")
    }

    /// A client with the operator's identity (user `keysmith-test-operator`).
    pub fn operator_client(&self) -> Client {
        Client::try_from(self.operator_config.clone()).expect("operator client")
    }

    /// Kubeconfig with the operator's identity, for the `keysmith` binary.
    pub fn operator_kubeconfig(&self) -> &Path {
        &self.operator_kubeconfig
    }

    /// The API server's audit log (JSON lines; write requests only).
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// Writes a kubeconfig that authenticates with a bearer `token` (e.g. a ServiceAccount
    /// token from `kubectl create token`) and nothing else, and returns its path.
    pub fn token_kubeconfig(&self, file_name: &str, token: &str) -> PathBuf {
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("read admin kubeconfig");
        let mut config: serde_json::Value =
            serde_json::from_str(&admin).expect("admin kubeconfig is JSON");
        config["users"][0]["user"] = serde_json::json!({ "token": token.trim() });
        let path = self.dir.path().join(file_name);
        std::fs::write(&path, config.to_string()).expect("write token kubeconfig");
        path
    }

    /// The port kube-apiserver listens on (127.0.0.1).
    pub fn apiserver_port(&self) -> u16 {
        self.apiserver.port
    }

    /// The certificates of this control plane (the node's kubelet needs its client
    /// certificate and the CA).
    pub fn pki(&self) -> &Pki {
        &self.apiserver.pki
    }

    /// Writes a kubeconfig for the test node's kubelet into `dir` and returns its path.
    pub fn node_kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("kubelet.kubeconfig");
        let text = kubeconfig_json(&self.apiserver.pki, self.apiserver.port, pki::NODE_USER);
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The directory of the control plane binaries (and of kubelet and kube-scheduler).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// What the control plane was started for.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Path of an admin kubeconfig, for `kubectl --kubeconfig` and other tools.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The Kubernetes release the control plane was built from, e.g. `v1.37.2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How long the start took, from generating certificates to the default ServiceAccount.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// Process ids of etcd, kube-apiserver and kube-controller-manager.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(Managed::pid).collect()
    }

    /// Creates a fresh namespace named `<prefix>-<n>` for one test and returns its name.
    pub async fn namespace(&self, client: &Client, prefix: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"keysmith.dev/test": "true"}}
        }))
        .expect("namespace object");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        name
    }

    /// A `kubectl` command (the one built with the control plane) using the admin kubeconfig.
    pub fn kubectl_command(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        // A cache of this control plane's own: the shared ~/.kube/cache is keyed by
        // host:port, and an earlier control plane on the same port may have left it stale.
        cmd.arg("--cache-dir")
            .arg(self.kubeconfig.with_file_name("kubectl-cache"));
        cmd
    }

    /// Runs `kubectl` with `args` on a blocking thread and returns its output.
    pub async fn kubectl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.kubectl_command();
        cmd.args(args);
        tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("kubectl thread")
            .expect("run kubectl")
    }
}

/// The binaries directory: `$KEYSMITH_CONTROLPLANE_BIN`, or what `build.sh` prints (it builds
/// the control plane first if the cache does not have it yet).
pub fn binaries() -> Result<PathBuf> {
    built_dir("KEYSMITH_CONTROLPLANE_BIN", "hack/controlplane/build.sh")
}

/// The directory `$env_var` names, else the one the build script `script` (relative to the
/// repository) prints last: such scripts build into a cache once and print the directory.
pub fn built_dir(env_var: &str, script: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(dir));
    }
    let script = repo_root().join(script);
    let out = Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), out.status).into());
    }
    let stdout = String::from_utf8(out.stdout)?;
    let dir = stdout
        .lines()
        .last()
        .ok_or_else(|| format!("{} printed no directory", script.display()))?;
    Ok(PathBuf::from(dir.trim()))
}

/// The Kubernetes release pinned in `hack/controlplane/versions.env`.
pub fn pinned_version() -> Result<String> {
    let text = std::fs::read_to_string(repo_root().join("hack/controlplane/versions.env"))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("KUBERNETES_VERSION="))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| "KUBERNETES_VERSION missing in versions.env".into())
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start_etcd(bin: &Path, dir: &Path, client_port: u16, peer_port: u16) -> Result<Managed> {
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let mut cmd = Command::new(bin.join("etcd"));
    cmd.arg("--name=keysmith-test")
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=keysmith-test={peer_url}"))
        .arg("--unsafe-no-fsync=true")
        .arg("--log-level=warn");
    Ok(Managed::spawn("etcd", cmd, &dir.join("etcd.log"))?)
}

fn start_apiserver(
    bin: &Path,
    dir: &Path,
    pki: &Pki,
    etcd_port: u16,
    port: u16,
    flavor: Flavor,
) -> Result<Managed> {
    let mut cmd = Command::new(bin.join("kube-apiserver"));
    cmd.arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!(
            "--cert-dir={}",
            dir.join("apiserver-certs").display()
        ))
        .arg(format!("--tls-cert-file={}", pki.serving_cert.display()))
        .arg(format!(
            "--tls-private-key-file={}",
            pki.serving_key.display()
        ))
        .arg(format!("--client-ca-file={}", pki.ca_cert.display()))
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--endpoint-reconciler-type=none")
        .arg(match flavor {
            Flavor::Plain => "--authorization-mode=RBAC",
            Flavor::Node => "--authorization-mode=Node,RBAC",
        })
        .arg("--allow-privileged=true")
        .arg(format!("--service-account-issuer=https://127.0.0.1:{port}"))
        .arg(format!(
            "--service-account-key-file={}",
            pki.service_account_pub.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            pki.service_account_key.display()
        ))
        .arg(format!(
            "--audit-policy-file={}",
            audit::write_policy(dir)?.display()
        ))
        .arg(format!(
            "--audit-log-path={}",
            dir.join("audit.log").display()
        ))
        .arg("--audit-log-format=json")
        .arg("--audit-log-mode=blocking")
        .arg("--audit-log-maxbackup=0");
    if flavor == Flavor::Node {
        // Kubelets may change only their own Node and pods; logs and port-forwards reach the
        // kubelet by its host name (`localhost`), never through another interface.
        cmd.arg("--enable-admission-plugins=NodeRestriction")
            .arg("--kubelet-preferred-address-types=Hostname")
            .arg(format!(
                "--kubelet-client-certificate={}",
                pki.admin_cert.display()
            ))
            .arg(format!("--kubelet-client-key={}", pki.admin_key.display()));
    }
    Ok(Managed::spawn(
        "kube-apiserver",
        cmd,
        &dir.join("kube-apiserver.log"),
    )?)
}

fn start_controller_manager(
    bin: &Path,
    dir: &Path,
    kubeconfig: &Path,
    pki: &Pki,
    port: u16,
    flavor: Flavor,
) -> Result<Managed> {
    let mut cmd = Command::new(bin.join("kube-controller-manager"));
    cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(match flavor {
            Flavor::Plain => {
                "--controllers=garbage-collector-controller,namespace-controller,\
                 serviceaccount-controller,serviceaccount-token-controller"
            }
            Flavor::Node => "--controllers=*",
        })
        // The volume controllers look for flexvolume drivers; their default directory is
        // under /usr/libexec, which they would create on the host.
        .arg(format!(
            "--flex-volume-plugin-dir={}",
            dir.join("kcm-volume-plugins").display()
        ))
        .arg("--leader-elect=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg(format!("--cert-dir={}", dir.join("kcm-certs").display()))
        .arg(format!(
            "--service-account-private-key-file={}",
            pki.service_account_key.display()
        ))
        .arg(format!("--root-ca-file={}", pki.ca_cert.display()));
    Ok(Managed::spawn(
        "kube-controller-manager",
        cmd,
        &dir.join("kube-controller-manager.log"),
    )?)
}

/// A kubeconfig in JSON (which kubectl and kube-rs read as YAML) for `user`: `admin`, the
/// node ([`pki::NODE_USER`]) or the operator.
fn kubeconfig_json(pki: &Pki, port: u16, user: &str) -> String {
    let (cert, key) = match user {
        "admin" => (&pki.admin_cert_pem, &pki.admin_key_pem),
        pki::NODE_USER => (&pki.node_cert_pem, &pki.node_key_pem),
        _ => (&pki.operator_cert_pem, &pki.operator_key_pem),
    };
    let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "keysmith-test", "cluster": {
            "server": format!("https://127.0.0.1:{port}"),
            "certificate-authority-data": b64(pki.ca_pem.as_bytes()),
        }}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": b64(cert.as_bytes()),
            "client-key-data": b64(key.as_bytes()),
        }}],
        "contexts": [{"name": "keysmith-test", "context": {
            "cluster": "keysmith-test", "user": "admin", "namespace": "default",
        }}],
        "current-context": "keysmith-test",
    });
    serde_json::to_string_pretty(&config).expect("kubeconfig is plain JSON")
}

/// `N` distinct free ports on 127.0.0.1 (held open together so none repeats).
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Polls `check` every 100 ms until it returns true, failing early if `process` exits.
async fn wait_until<F, Fut>(process: &mut Managed, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if check().await {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            return Err(format!(
                "{} exited ({status}) before {what}; log tail:\n{}",
                process.name(),
                process.log_tail(30)
            )
            .into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} not {what} after {READY_TIMEOUT:?}; log tail:\n{}",
                process.name(),
                process.log_tail(30)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_tcp(process: &mut Managed, port: u16) -> Result<()> {
    wait_until(process, "listening", || async move {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await
}

async fn wait_for_readyz(process: &mut Managed, client: &Client) -> Result<()> {
    wait_until(process, "ready (/readyz)", || async {
        let request = http::Request::get("/readyz").body(Vec::new());
        match request {
            Ok(request) => matches!(client.request_text(request).await, Ok(body) if body == "ok"),
            Err(_) => false,
        }
    })
    .await
}

/// kube-controller-manager is working once its serviceaccount controller has created the
/// `default` ServiceAccount of the `default` namespace.
async fn wait_for_default_service_account(
    processes: &mut [Managed],
    client: &Client,
) -> Result<()> {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let kcm = processes.last_mut().ok_or("no controller manager")?;
    wait_until(kcm, "running (default ServiceAccount)", || async {
        matches!(accounts.get_opt("default").await, Ok(Some(_)))
    })
    .await
}

/// The control plane's scratch directory: removed on drop, or at exit for the shared one.
struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keysmith-controlplane-")
            .tempdir()?;
        Ok(Self {
            path: dir.keep(),
            keep: std::env::var_os("KEYSMITH_KEEP_CONTROLPLANE").is_some(),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn remove_at_exit(&self) {
        if !self.keep {
            process::remove_at_exit(self.path.clone());
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

impl ControlPlane {
    /// Installs `crds/` with `kubectl apply` (once per control plane) and waits until every
    /// CRD is Established and its schema is published for `kubectl explain`.
    pub async fn install_crds(&self) {
        self.crds_installed
            .get_or_init(|| async {
                let crds = repo_root().join("crds");
                let out = self
                    .kubectl(["apply".as_ref(), "-f".as_ref(), crds.as_os_str()])
                    .await;
                assert!(out.status.success(), "install crds: {}", stderr(&out));
                let out = self
                    .kubectl([
                        "wait".as_ref(),
                        "--for=condition=Established".as_ref(),
                        "--timeout=60s".as_ref(),
                        "-f".as_ref(),
                        crds.as_os_str(),
                    ])
                    .await;
                assert!(
                    out.status.success(),
                    "crds not established: {}",
                    stderr(&out)
                );
                self.wait_for_published_schemas().await;
            })
            .await;
    }

    /// Waits until the apiserver's OpenAPI v3 document for keysmith.dev/v1alpha1 has every
    /// kind's schema. The apiserver publishes it some time after a CRD is Established, and
    /// `kubectl explain` finds nothing before (the root `/openapi/v3` lists a group version
    /// only once its document is served).
    async fn wait_for_published_schemas(&self) {
        let kinds: Vec<String> = keysmith::api::crds()
            .into_iter()
            .map(|(_, crd)| format!("dev.keysmith.v1alpha1.{}", crd.spec.names.kind))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .kubectl([
                    "get",
                    "--request-timeout=10s",
                    "--raw",
                    "/openapi/v3/apis/keysmith.dev/v1alpha1",
                ])
                .await;
            let document = String::from_utf8_lossy(&out.stdout);
            let missing: Vec<&String> = kinds
                .iter()
                .filter(|kind| !document.contains(&format!("\"{kind}\"")))
                .collect();
            if out.status.success() && missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "OpenAPI v3 still lacks {missing:?} after 60 s: {}",
                stderr(&out)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `kubectl <args> -f -` with `manifest` on standard input.
    pub async fn kubectl_stdin(&self, args: &[&str], manifest: &str) -> Output {
        use std::io::Write;
        let mut cmd = self.kubectl_command();
        cmd.args(args)
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let manifest = manifest.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(manifest.as_bytes())?;
            }
            child.wait_with_output()
        })
        .await
        .expect("kubectl thread")
        .expect("run kubectl")
    }
}

/// A command's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Applies `yaml` (one or more documents) in `namespace` with `kubectl apply`, as a user
/// would; panics with kubectl's error when it fails.
pub async fn apply(cp: &ControlPlane, namespace: &str, yaml: &str) {
    let out = cp.kubectl_stdin(&["apply", "-n", namespace], yaml).await;
    assert!(out.status.success(), "kubectl apply: {}", stderr(&out));
}

/// The shared control plane with the CRDs installed, a client, a fresh namespace named
/// `<prefix>-<n>`, and an in-process operator watching that namespace.
pub async fn setup(prefix: &str) -> (&'static ControlPlane, Client, String, operator::Operator) {
    let cp = shared();
    cp.install_crds().await;
    let client = cp.client();
    let ns = cp.namespace(&client, prefix).await;
    let operator = operator::Operator::start(cp, &ns);
    (cp, client, ns, operator)
}
