//! A real node for the tests: Debian's containerd and runc with the CNI bridge plugin, and
//! kubelet and kube-scheduler of the pinned release (built with the control plane), joined to
//! a [`ControlPlane`] started with [`ControlPlane::start_for_node`].
//!
//! The node is called `localhost` and runs as root (it needs namespaces, mounts, cgroups and
//! iptables): [`Node::start`] refuses otherwise, and tests skip with a message. Everything
//! it creates is named so it can be found again, and removed by `hack/node/teardown.sh`
//! when the node stops (also when a test panics), or by `hack/test.sh` after a test binary
//! was killed:
//! - a scratch directory `/tmp/keysmith-node-*` (containerd's root, state and socket,
//!   kubelet's root, pod logs, CNI configuration and addresses, runc state);
//! - the cgroup `/keysmith-node` in every hierarchy (kubelet's `cgroupRoot`);
//! - the bridge `keysmith0` and the iptables chains `KEYSMITH-NODE*` of
//!   `hack/node/network.sh`: the pod network never leaves the machine, and the only service
//!   the pods reach is the API server (as `10.0.0.1:443`, the `kubernetes` Service).
//!
//! Images come from archives ([`Node::import_image`]); there is no registry. The sandbox
//! image is built from Kubernetes' own `pause.c` by `hack/node/build.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;

use super::process::Managed;
use super::{ControlPlane, Flavor, Result, free_ports, repo_root, wait_until};

/// The node's name; the API server reaches its kubelet by this host name.
pub const NODE_NAME: &str = "localhost";
/// kubelet's cgroup root in every cgroup hierarchy.
const CGROUP_ROOT: &str = "keysmith-node";
/// How long the kubelet may take to register a Ready node.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The machine-wide lock a node holds while it runs (hack/test.sh takes it too, to look for
/// leftovers while no node runs).
pub const LOCK_FILE: &str = "/run/lock/keysmith-node.lock";

/// A running node: containerd, kube-scheduler and kubelet.
pub struct Node {
    // Field order is drop order: the processes stop before teardown runs (in `drop`), and
    // the lock goes last.
    processes: Vec<Managed>,
    dir: PathBuf,
    containerd_socket: PathBuf,
    startup: Duration,
    stopped: bool,
    _lock: std::fs::File,
}

/// Why a node cannot run on this machine (not root, Linux tools missing), for a skip
/// message; `None` when it can.
pub fn unavailable() -> Option<String> {
    // SAFETY: a plain getter without arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the test node needs root (namespaces, mounts, cgroups, iptables)".into());
    }
    // kubelet runs with the cgroupfs driver on cgroup v1 hierarchies (these machines have
    // them); a host with the unified hierarchy alone would need another configuration.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !mounts.lines().any(|l| l.contains(" - cgroup ")) {
        return Some("the test node needs cgroup v1 hierarchies (this host has none)".into());
    }
    None
}

/// One node at a time: nodes share the bridge, the cgroup root and the iptables chains. Hold
/// the guard for as long as the node runs.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE.lock().await
}

/// The directory `hack/node/build.sh` prints (it builds the pause image the first time).
fn node_cache() -> Result<PathBuf> {
    let script = repo_root().join("hack/node/build.sh");
    let out = Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), out.status).into());
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

impl Node {
    /// Starts a node on `cp` (which must have been started for one) and waits until it is
    /// Ready. Blocking parts run on the calling thread.
    pub async fn start(cp: &ControlPlane) -> Result<Self> {
        if let Some(why) = unavailable() {
            return Err(why.into());
        }
        if cp.flavor() != Flavor::Node {
            return Err("the control plane was not started for a node (start_for_node)".into());
        }
        let started = Instant::now();
        let lock = tokio::task::spawn_blocking(machine_lock).await??;
        let cache = node_cache()?;
        let pause_ref = std::fs::read_to_string(cache.join("pause.ref"))?
            .trim()
            .to_owned();
        let dir = tempfile::Builder::new()
            .prefix("keysmith-node-")
            .tempdir()?
            .keep();
        let mut node = Self {
            processes: Vec::new(),
            containerd_socket: dir.join("containerd/containerd.sock"),
            dir,
            startup: Duration::ZERO,
            stopped: false,
            _lock: lock,
        };
        // From here on, Drop tears down whatever was set up when a step fails.
        node.set_up(cp, &pause_ref, &cache.join("pause.oci.tar"))
            .await?;
        node.startup = started.elapsed();
        eprintln!(
            "node {NODE_NAME} Ready in {:.1}s ({})",
            node.startup.as_secs_f64(),
            node.dir.display()
        );
        Ok(node)
    }

    async fn set_up(&mut self, cp: &ControlPlane, pause_ref: &str, pause: &Path) -> Result<()> {
        let dir = self.dir.clone();
        let [scheduler_port, kubelet_port, kubelet_healthz_port] = free_ports()?;
        // Who runs this node, for hack/test.sh; then what the node may change on the host.
        std::fs::write(dir.join("owner.pid"), std::process::id().to_string())?;
        run_checked(
            Command::new(repo_root().join("hack/node/host.sh"))
                .arg("save")
                .arg(&dir),
        )?;
        run_checked(
            Command::new(repo_root().join("hack/node/network.sh"))
                .arg("up")
                .arg(cp.apiserver_port().to_string()),
        )?;
        for hierarchy in cgroup_hierarchies()? {
            std::fs::create_dir_all(hierarchy.join(CGROUP_ROOT))?;
        }

        // containerd, and the sandbox image.
        std::fs::create_dir_all(dir.join("containerd"))?;
        std::fs::create_dir_all(dir.join("cni/net.d"))?;
        std::fs::write(dir.join("cni/net.d/10-keysmith.conflist"), cni_config(&dir))?;
        let config = dir.join("containerd/config.toml");
        std::fs::write(&config, containerd_config(&dir, pause_ref))?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config);
        self.processes.push(Managed::spawn(
            "containerd",
            cmd,
            &dir.join("containerd.log"),
        )?);
        let socket = self.containerd_socket.clone();
        wait_until(&mut self.processes[0], "serving its socket", || {
            let socket = socket.clone();
            async move { std::os::unix::net::UnixStream::connect(&socket).is_ok() }
        })
        .await?;
        self.import_image(pause)?;

        // kube-scheduler.
        let admin = cp.kubeconfig();
        let mut cmd = Command::new(cp.bin_dir().join("kube-scheduler"));
        cmd.arg(format!("--kubeconfig={}", admin.display()))
            .arg(format!("--authentication-kubeconfig={}", admin.display()))
            .arg(format!("--authorization-kubeconfig={}", admin.display()))
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={scheduler_port}"));
        self.processes.push(Managed::spawn(
            "kube-scheduler",
            cmd,
            &dir.join("kube-scheduler.log"),
        )?);

        // kubelet.
        let kubelet_config = dir.join("kubelet-config.yaml");
        std::fs::write(
            &kubelet_config,
            kubelet_config_yaml(
                &dir,
                &cp.pki().ca_cert,
                &self.containerd_socket,
                kubelet_port,
                kubelet_healthz_port,
            ),
        )?;
        let kubeconfig = cp.node_kubeconfig(&dir)?;
        let mut cmd = Command::new(cp.bin_dir().join("kubelet"));
        cmd.arg(format!("--config={}", kubelet_config.display()))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--root-dir={}", dir.join("kubelet").display()))
            .arg(format!("--hostname-override={NODE_NAME}"))
            .arg("--v=1");
        self.processes
            .push(Managed::spawn("kubelet", cmd, &dir.join("kubelet.log"))?);

        let nodes = Api::<NodeObject>::all(cp.client());
        let deadline = Instant::now() + NODE_READY_TIMEOUT;
        loop {
            if let Ok(Some(node)) = nodes.get_opt(NODE_NAME).await
                && node_is_ready(&node)
            {
                return Ok(());
            }
            for process in &mut self.processes {
                if let Some(status) = process.exited() {
                    return Err(format!(
                        "{} exited ({status}) before the node was Ready; log tail:\n{}",
                        process.name(),
                        process.log_tail(40)
                    )
                    .into());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node not Ready after {NODE_READY_TIMEOUT:?}; kubelet log tail:\n{}",
                    self.processes
                        .last()
                        .map(|p| p.log_tail(40))
                        .unwrap_or_default()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// How long [`Node::start`] took, from nothing to a Ready node.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The node's scratch directory (logs of containerd, kubelet and kube-scheduler).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ctr` talking to this node's containerd, in the Kubernetes namespace `k8s.io`.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.containerd_socket)
            .args(["--namespace", "k8s.io"]);
        cmd
    }

    /// Imports an OCI image archive (`hack/image.sh`, `hack/node/build.sh`) under the
    /// reference it carries, as `kind load image-archive` does for kind.
    pub fn import_image(&self, archive: &Path) -> Result<()> {
        run_checked(
            self.ctr()
                .args(["images", "import", "--no-unpack=false"])
                .arg(archive),
        )?;
        Ok(())
    }

    /// Gives `reference` a second name `alias` (`ctr images tag`).
    pub fn tag_image(&self, reference: &str, alias: &str) -> Result<()> {
        run_checked(
            self.ctr()
                .args(["images", "tag", "--force", reference, alias]),
        )?;
        Ok(())
    }

    /// The host pid of a running container, from its `containerID` in the pod status
    /// (`containerd://<id>`).
    pub fn container_pid(&self, container_id: &str) -> Result<u32> {
        let id = container_id
            .strip_prefix("containerd://")
            .unwrap_or(container_id);
        let out = run_checked(self.ctr().args(["tasks", "ls"]))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next() == Some(id)).then(|| fields.next()?.parse().ok())?
            })
            .ok_or_else(|| format!("no task {id} in `ctr tasks ls`:\n{text}").into())
    }

    /// The tail of a node process's log (`containerd`, `kube-scheduler`, `kubelet`).
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        self.processes
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
    }

    /// The last lines of kubelet's and containerd's logs, for failure messages.
    pub fn diagnosis(&self) -> String {
        format!(
            "kubelet log tail:\n{}\ncontainerd log tail:\n{}",
            self.log_tail("kubelet", 30),
            self.log_tail("containerd", 30)
        )
    }

    /// Stops the node and removes everything it created (`hack/node/teardown.sh`): its
    /// processes and those of its pods, mounts, cgroups, pod network and scratch directory.
    pub fn stop(mut self) -> Result<()> {
        self.tear_down()
    }

    fn tear_down(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        // kubelet first, so that it starts nothing new; containerd last.
        while let Some(mut process) = self.processes.pop() {
            process.terminate(Duration::from_secs(10));
        }
        run_checked(Command::new(repo_root().join("hack/node/teardown.sh")).arg(&self.dir))?;
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(e) = self.tear_down() {
            eprintln!("node teardown: {e}");
        }
    }
}

/// The state a node may leave behind (`hack/node/host-state.sh`): compare it before a node
/// starts and after it stopped.
pub fn host_state() -> Result<String> {
    let out = run_checked(&mut Command::new(
        repo_root().join("hack/node/host-state.sh"),
    ))?;
    Ok(String::from_utf8(out.stdout)?)
}

/// What a stopped node left behind, compared with `before` ([`host_state`] before it
/// started): lines that appeared (`+`) or went (`-`). Processes killed by the teardown may
/// take a moment to exit, so a difference must persist for five seconds to count.
pub fn leftovers(before: &str) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let difference = host_state_difference(before, &host_state()?);
        if difference.is_empty() || Instant::now() > deadline {
            return Ok(difference);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The lines of `after` that `before` lacks, and those of `before` that `after` lacks.
fn host_state_difference(before: &str, after: &str) -> Vec<String> {
    let before_lines: std::collections::BTreeSet<&str> = before.lines().collect();
    let after_lines: std::collections::BTreeSet<&str> = after.lines().collect();
    let added = after_lines
        .difference(&before_lines)
        .map(|l| format!("+ {l}"));
    let removed = before_lines
        .difference(&after_lines)
        .map(|l| format!("- {l}"));
    added.chain(removed).collect()
}

/// Waits for the machine-wide node lock ([`LOCK_FILE`]); held until the file is closed.
fn machine_lock() -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = Path::new(LOCK_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a descriptor this function owns; blocks until the lock is free.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(file)
}

fn node_is_ready(node: &NodeObject) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Every mounted cgroup hierarchy (v1 controllers, the named systemd one, and cgroup2).
fn cgroup_hierarchies() -> Result<Vec<PathBuf>> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(mounts
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let mount_point = left.split_whitespace().nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect())
}

/// Runs `cmd` and fails with its output when it exits non-zero.
fn run_checked(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .map_err(|e| format!("run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} {:?} failed ({}): {}{}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

/// containerd 1.6 as a CRI runtime with everything in `dir`. Facts of these machines: cgroup
/// v1 with the cgroupfs driver, and root without CAP_SYS_RESOURCE, so the CRI plugin must
/// not try to lower a container's oom_score_adj (`restrict_oom_score_adj`).
fn containerd_config(dir: &Path, pause_ref: &str) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd/containerd.sock"

[ttrpc]
  address = "{d}/containerd/containerd.sock.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_ref}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni/net.d"
"#
    )
}

/// The pod network: the bridge `keysmith0` that `hack/node/network.sh` made, addresses from
/// 10.233.0.0/24 kept in `dir`, no masquerading (nothing leaves the machine).
fn cni_config(dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "keysmith-node",
        "plugins": [{
            "type": "bridge",
            "bridge": "keysmith0",
            "isGateway": true,
            "isDefaultGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "dataDir": dir.join("cni/ipam"),
                "ranges": [[{"subnet": "10.233.0.0/24", "gateway": "10.233.0.1"}]],
            },
        }],
    })
    .to_string()
}

/// kubelet's configuration. `failCgroupV1: false` (these machines have cgroup v1, which
/// kubelet refuses by default); the API server authenticates to it with its client
/// certificate and kubelet asks the API server what that may do; everything listens on
/// 127.0.0.1; no image garbage collection or eviction is needed for minutes of tests.
fn kubelet_config_yaml(
    dir: &Path,
    ca: &Path,
    containerd_socket: &Path,
    port: u16,
    healthz_port: u16,
) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP_ROOT}
failSwapOn: false
containerRuntimeEndpoint: unix://{socket}
address: 127.0.0.1
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
podLogsDir: {dir}/pod-logs
volumePluginDir: {dir}/volume-plugins
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
resolvConf: ""
registerNode: true
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "0%"
  imagefs.available: "0%"
  nodefs.inodesFree: "0%"
localStorageCapacityIsolation: false
"#,
        socket = containerd_socket.display(),
        dir = dir.display(),
        ca = ca.display(),
    )
}
