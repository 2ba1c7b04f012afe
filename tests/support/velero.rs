//! Velero for backup and restore tests: its server runs out of cluster against a
//! [`ControlPlane`] and keeps its backups in a MinIO S3 store on a free 127.0.0.1 port, both
//! killed when the [`Velero`] is dropped.
//!
//! - Velero (server and CLI are one binary), velero-plugin-for-aws and MinIO are built from
//!   their Go modules by `hack/velero/build.sh` (pinned in `hack/velero/versions.env`) into
//!   `~/.cache/keysmith/velero/`, or taken from `$KEYSMITH_VELERO_BIN` (a directory with
//!   `velero`, `minio` and `plugins/velero-plugin-for-aws`, as `build.sh` lays it out).
//! - [`Velero::start`] installs Velero's CRDs (`velero install --crds-only`) and keysmith's,
//!   creates a namespace `velero-<n>` for Velero's own objects, a bucket, the default
//!   BackupStorageLocation (provider `aws`, path-style URLs, region `minio`), and starts
//!   `velero server` with the admin kubeconfig; it returns once the location is Available.
//!   No node-agent and no volume snapshot location: backups hold Kubernetes objects only.
//! - `velero server` learns the API's resources at start and then every 5 minutes only: a
//!   kind whose CRD is installed after [`Velero::start`] is silently left out of backups until
//!   then. Hence keysmith's CRDs are installed first.
//! - Velero's built-in pod volume restore action reads the image of the Deployment `velero`
//!   in Velero's namespace whenever a restore starts, and without one every restore ends
//!   PartiallyFailed (`deployments.apps "velero" not found`), pods or not: a placeholder with
//!   0 replicas stands in for it.
//! - The S3 credentials reach the AWS plugin as a shared credentials file
//!   (`AWS_SHARED_CREDENTIALS_FILE`), never as a Secret in the cluster. Every process gets a
//!   `HOME` and `TMPDIR` in the scratch directory: the CLI reads `~/.config/velero`, the
//!   server keeps plugin sockets (and would keep credential files) in the temporary
//!   directory. Velero's metrics listen on a free 127.0.0.1 port, its profiler is off, and
//!   `build.sh` turns off the controller-runtime metrics server (`:8080`, no flag). MinIO
//!   listens on 127.0.0.1 and on [::1] with the same port.
//! - Restores drop `ownerReferences` and `status` (unless asked with
//!   `--status-include-resources`), keep labels and annotations and add
//!   `velero.io/backup-name` and `velero.io/restore-name`. They create CRDs, namespaces,
//!   ServiceAccounts, Secrets and ConfigMaps first and custom resources after them, so a
//!   Secret is back before the keysmith resource that owned it. A backup of a namespace with
//!   custom resources also holds their CRD; restoring it where the CRD exists adds a warning
//!   (phase still Completed). Objects that already exist are left alone unless
//!   `--existing-resource-policy=update`.
//!
//! Everything here blocks: a start takes about 5 s, a backup or restore of a small namespace
//! about 1 s.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::process::Managed;
use super::{ControlPlane, Result, free_ports};

/// MinIO's root user, which Velero also uses (MinIO wants a password of 8 characters or more).
const ACCESS_KEY: &str = "keysmith";
const SECRET_KEY: &str = "keysmith-velero-test";
/// Region of the BackupStorageLocation and of the request signatures; MinIO takes any.
const REGION: &str = "minio";
const BUCKET: &str = "velero";
/// The name of the default BackupStorageLocation.
pub const LOCATION: &str = "default";

const START_ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);
const LOG_TAIL_LINES: usize = 40;

/// Phases after which a Backup or Restore does not change any more.
const FINAL_PHASES: &[&str] = &["Completed", "PartiallyFailed", "Failed", "FailedValidation"];

/// The directory with `velero`, `minio` and `plugins/`: `$KEYSMITH_VELERO_BIN`, or what
/// `hack/velero/build.sh` prints (it builds them the first time; a no-op afterwards).
pub fn binaries() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| locate_binaries().map_err(|e| e.to_string()))
        .clone()
        .map_err(Into::into)
}

fn locate_binaries() -> Result<PathBuf> {
    super::built_dir("KEYSMITH_VELERO_BIN", "hack/velero/build.sh")
}

/// A running Velero server and its MinIO.
pub struct Velero {
    // Field order is drop order: the server goes before the store it writes to.
    server: Managed,
    minio: Managed,
    bin_dir: PathBuf,
    dir: PathBuf,
    kubeconfig: PathBuf,
    namespace: String,
    minio_port: u16,
    startup: Duration,
}

impl Velero {
    /// Starts MinIO and `velero server` for `cp`, with their data, logs and configuration in
    /// `scratch` (which the caller owns and removes). Installs Velero's CRDs, creates the
    /// namespace `velero-<n>`, the bucket and the BackupStorageLocation, and waits until the
    /// location is Available. Fails with the log tail of whichever process did not come up.
    pub fn start(cp: &ControlPlane, scratch: &Path) -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let started = Instant::now();
        let bin_dir = binaries()?;
        let namespace = format!("velero-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let dir = scratch.to_owned();
        for sub in ["home", "tmp", "minio-data", "minio-certs"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let credentials = dir.join("credentials");
        std::fs::write(
            &credentials,
            format!(
                "[default]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\n"
            ),
        )?;

        install_velero_crds(cp, &bin_dir, &dir)?;
        install_keysmith_crds(cp)?;
        let mut errors = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            // A free port can be taken between choosing and binding it: try others.
            let [minio_port, console_port, metrics_port] = free_ports()?;
            let minio = match start_minio(&bin_dir, &dir, attempt, minio_port, console_port) {
                Ok(minio) => minio,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            create_bucket(minio_port)?;
            apply_location(cp, &namespace, minio_port)?;
            let log = dir.join(format!("velero-{attempt}.log"));
            let server = Managed::spawn(
                "velero",
                server_command(&bin_dir, &dir, cp.kubeconfig(), &namespace, metrics_port),
                &log,
            )?;
            let mut velero = Self {
                server,
                minio,
                bin_dir: bin_dir.clone(),
                dir: dir.clone(),
                kubeconfig: cp.kubeconfig().to_owned(),
                namespace: namespace.clone(),
                minio_port,
                startup: Duration::ZERO,
            };
            match velero.wait_available() {
                Ok(()) => {
                    velero.startup = started.elapsed();
                    return Ok(velero);
                }
                // Dropping `velero` kills both processes before the next attempt.
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(format!(
            "Velero did not start in {START_ATTEMPTS} attempts:\n{}",
            errors.join("\n\n")
        )
        .into())
    }

    /// Waits until the server has validated the BackupStorageLocation (status.phase
    /// `Available`), failing early if the server or MinIO exits.
    fn wait_available(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let phase = self
                .get_json("backup-location", LOCATION)
                .ok()
                .and_then(|l| l["status"]["phase"].as_str().map(str::to_owned));
            if phase.as_deref() == Some("Available") {
                return Ok(());
            }
            for process in [&mut self.server, &mut self.minio] {
                if let Some(status) = process.exited() {
                    return Err(format!(
                        "{} exited ({status}) before the backup location was Available; log tail:\n{}",
                        process.name(),
                        process.log_tail(LOG_TAIL_LINES)
                    )
                    .into());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "backup location not Available after {READY_TIMEOUT:?} (phase {phase:?}); velero log tail:\n{}",
                    self.server.log_tail(LOG_TAIL_LINES)
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A `velero` CLI command for this server (kubeconfig, namespace, a `HOME` of its own).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("velero"));
        cmd.env("HOME", self.dir.join("home"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--namespace")
            .arg(&self.namespace);
        cmd
    }

    /// Runs `velero <args>` and returns its standard output; fails with its output otherwise.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.command().args(args).output()?;
        if !out.status.success() {
            return Err(format!("velero {}: {}", args.join(" "), output_text(&out)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `velero <kind> get <name> -o json`, parsed.
    fn get_json(&self, kind: &str, name: &str) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(
            &self.run(&[kind, "get", name, "-o", "json"])?,
        )?)
    }

    /// Backs up `namespace` (its objects and the Namespace) into backup `name` and waits until
    /// it is Completed; fails with `velero backup describe --details`, its log and the
    /// server's log tail when it ends in another phase or takes too long.
    pub fn backup(&self, name: &str, namespace: &str) -> Result<()> {
        self.backup_with(name, &["--include-namespaces", namespace])
    }

    /// `velero backup create <name> <args>`, waiting as [`Velero::backup`] does.
    pub fn backup_with(&self, name: &str, args: &[&str]) -> Result<()> {
        let mut create = vec!["backup", "create", name];
        create.extend_from_slice(args);
        self.run(&create)?;
        self.wait_completed("backup", name)
    }

    /// Restores everything in `backup` as restore `<backup>-restore-<n>`, waits until it is
    /// Completed (warnings, such as objects that already exist, are fine) and returns the
    /// restore's name; fails like [`Velero::backup`].
    pub fn restore(&self, backup: &str) -> Result<String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{backup}-restore-{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.restore_with(&name, backup, &[])?;
        Ok(name)
    }

    /// `velero restore create <name> --from-backup <backup> <args>` (e.g.
    /// `--namespace-mappings`, `--existing-resource-policy=update`,
    /// `--status-include-resources`), waiting as [`Velero::restore`] does.
    pub fn restore_with(&self, name: &str, backup: &str, args: &[&str]) -> Result<()> {
        let mut create = vec!["restore", "create", name, "--from-backup", backup];
        create.extend_from_slice(args);
        self.run(&create)?;
        self.wait_completed("restore", name)
    }

    /// Polls backup or restore `name` until its phase is final; Ok only for `Completed`.
    fn wait_completed(&self, kind: &str, name: &str) -> Result<()> {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let mut phase = String::new();
        while Instant::now() < deadline {
            // Right after `create` the object may not be readable yet.
            if let Ok(object) = self.get_json(kind, name) {
                phase = object["status"]["phase"].as_str().unwrap_or("").to_owned();
                if FINAL_PHASES.contains(&phase.as_str()) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if phase == "Completed" {
            return Ok(());
        }
        let describe = self
            .run(&[kind, "describe", name, "--details", "--colorized=false"])
            .unwrap_or_else(|e| e.to_string());
        let logs = self
            .run(&[kind, "logs", name])
            .unwrap_or_else(|e| e.to_string());
        Err(format!(
            "{kind} {name}: phase {phase:?} (wanted Completed)\n--- velero {kind} describe ---\n{describe}\n\
             --- velero {kind} logs ---\n{logs}\n--- velero server log tail ---\n{}",
            self.log_tail()
        )
        .into())
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.server.log_tail(LOG_TAIL_LINES)
    }

    /// The namespace of Velero's own objects (backups, restores, the location).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The directory of the binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// MinIO's S3 endpoint, `http://127.0.0.1:<port>`.
    pub fn s3_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.minio_port)
    }

    /// How long the start took, from installing the CRDs to the location being Available.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// Process ids of the Velero server and MinIO.
    pub fn pids(&self) -> Vec<u32> {
        vec![self.server.pid(), self.minio.pid()]
    }
}

/// `velero install --crds-only --dry-run -o yaml | kubectl apply -f -`, then waits until
/// the CRDs are Established. Idempotent (a second Velero on the same control plane).
fn install_velero_crds(cp: &ControlPlane, bin_dir: &Path, dir: &Path) -> Result<()> {
    let out = Command::new(bin_dir.join("velero"))
        .env("HOME", dir.join("home"))
        .args(["install", "--crds-only", "--dry-run", "-o", "yaml"])
        .output()?;
    if !out.status.success() {
        return Err(format!("velero install --crds-only: {}", output_text(&out)).into());
    }
    let crds = dir.join("velero-crds.yaml");
    std::fs::write(&crds, &out.stdout)?;
    kubectl(
        cp,
        &["apply".as_ref(), "-f".as_ref(), crds.as_os_str()],
        None,
    )?;
    kubectl(
        cp,
        &[
            "wait".as_ref(),
            "--for=condition=Established".as_ref(),
            "--timeout=60s".as_ref(),
            "-f".as_ref(),
            crds.as_os_str(),
        ],
        None,
    )?;
    Ok(())
}

/// [`ControlPlane::install_crds`] (async, once per control plane) from this blocking code,
/// which may itself run inside a test's runtime: on a thread with a runtime of its own.
fn install_keysmith_crds(cp: &ControlPlane) -> Result<()> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(cp.install_crds());
                Ok(())
            })
            .join()
            .map_err(|_| "installing keysmith's CRDs panicked")?
    })
}

/// Creates Velero's namespace, the placeholder Deployment `velero` (see the module
/// documentation) and the default BackupStorageLocation pointing at MinIO.
fn apply_location(cp: &ControlPlane, namespace: &str, minio_port: u16) -> Result<()> {
    let labels = serde_json::json!({"deploy": "velero"});
    let manifest = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "velero", "namespace": namespace},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "velero", "image": "velero/velero"}]},
                    },
                },
            },
            {
                "apiVersion": "velero.io/v1",
                "kind": "BackupStorageLocation",
                "metadata": {"name": LOCATION, "namespace": namespace},
                "spec": {
                    "provider": "aws",
                    "default": true,
                    "objectStorage": {"bucket": BUCKET},
                    "config": {
                        "region": REGION,
                        "s3ForcePathStyle": "true",
                        "s3Url": format!("http://127.0.0.1:{minio_port}"),
                    },
                },
            },
        ],
    });
    kubectl(
        cp,
        &["apply".as_ref(), "-f".as_ref(), "-".as_ref()],
        Some(&manifest.to_string()),
    )?;
    Ok(())
}

/// Runs the control plane's kubectl with `args` (and `stdin`); fails with its output.
fn kubectl(cp: &ControlPlane, args: &[&std::ffi::OsStr], stdin: Option<&str>) -> Result<()> {
    let mut cmd = cp.kubectl_command();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let Some(mut pipe) = child.stdin.take()
        && let Some(text) = stdin
    {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
        return Err(format!("kubectl {}: {}", args.join(" "), output_text(&out)).into());
    }
    Ok(())
}

/// `minio server` on 127.0.0.1 only (API and console), waiting until it is ready.
fn start_minio(
    bin_dir: &Path,
    dir: &Path,
    attempt: usize,
    port: u16,
    console_port: u16,
) -> Result<Managed> {
    let mut cmd = Command::new(bin_dir.join("minio"));
    cmd.env("HOME", dir.join("home"))
        .env("MINIO_ROOT_USER", ACCESS_KEY)
        .env("MINIO_ROOT_PASSWORD", SECRET_KEY)
        .env("MINIO_BROWSER", "off")
        .env("MINIO_UPDATE", "off")
        .args(["server", "--quiet", "--address"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--console-address")
        .arg(format!("127.0.0.1:{console_port}"))
        .arg("--certs-dir")
        .arg(dir.join("minio-certs"))
        .arg(dir.join("minio-data"));
    let mut minio = Managed::spawn("minio", cmd, &dir.join(format!("minio-{attempt}.log")))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        // /minio/health/ready answers 200 before the object layer and IAM are up (requests
        // then fail with XMinioServerNotInitialized); /minio/health/cluster waits for them.
        if matches!(
            http(port, "GET", "/minio/health/cluster", &[]),
            Ok((200, _))
        ) {
            return Ok(minio);
        }
        if let Some(status) = minio.exited() {
            return Err(format!(
                "minio exited ({status}) before it was ready; log tail:\n{}",
                minio.log_tail(LOG_TAIL_LINES)
            )
            .into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "minio not ready after {READY_TIMEOUT:?}; log tail:\n{}",
                minio.log_tail(LOG_TAIL_LINES)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `velero server` out of cluster: the admin kubeconfig, the AWS plugin, metrics on
/// 127.0.0.1, no profiler, S3 credentials from a file.
fn server_command(
    bin_dir: &Path,
    dir: &Path,
    kubeconfig: &Path,
    namespace: &str,
    metrics_port: u16,
) -> Command {
    let mut cmd = Command::new(bin_dir.join("velero"));
    cmd.env("HOME", dir.join("home"))
        .env("TMPDIR", dir.join("tmp"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
        // No instance metadata service here: never wait for one.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("server")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--namespace")
        .arg(namespace)
        .arg("--plugin-dir")
        .arg(bin_dir.join("plugins"))
        // Both default to listening on every interface or a fixed port.
        .arg(format!("--metrics-address=127.0.0.1:{metrics_port}"))
        .arg("--profiler-address=")
        .arg("--log-level=info");
    cmd
}

/// Creates the bucket with a SigV4-signed `PUT /<bucket>` (path style); an existing bucket
/// of ours is fine.
fn create_bucket(port: u16) -> Result<()> {
    let host = format!("127.0.0.1:{port}");
    let path = format!("/{BUCKET}");
    let now = jiff::Timestamp::now();
    let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let day = now.strftime("%Y%m%d").to_string();
    let empty_sha256 = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"").as_ref());
    let canonical_request = format!(
        "PUT\n{path}\n\nhost:{host}\nx-amz-content-sha256:{empty_sha256}\nx-amz-date:{amz_date}\n\n\
         host;x-amz-content-sha256;x-amz-date\n{empty_sha256}"
    );
    let scope = format!("{day}/{REGION}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical_request.as_bytes())
                .as_ref()
        )
    );
    let mac = |key: &[u8], data: &str| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        aws_lc_rs::hmac::sign(&key, data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let mut key = mac(format!("AWS4{SECRET_KEY}").as_bytes(), &day);
    for part in [REGION, "s3", "aws4_request"] {
        key = mac(&key, part);
    }
    let signature = hex(&mac(&key, &string_to_sign));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
    );
    let (status, body) = http(
        port,
        "PUT",
        &path,
        &[
            ("x-amz-content-sha256", &empty_sha256),
            ("x-amz-date", &amz_date),
            ("Authorization", &authorization),
        ],
    )?;
    if status == 200 || body.contains("BucketAlreadyOwnedByYou") {
        return Ok(());
    }
    Err(format!("create bucket {BUCKET}: HTTP {status}: {body}").into())
}

/// A bodiless HTTP/1.1 request to 127.0.0.1:`port`: (status, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    Ok((status, body))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A command's standard output and error, for messages.
fn output_text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
