//! A real KMIP server for the tests: PyKMIP 0.11.0 from PyPI, on a free 127.0.0.1 port, with
//! freshly generated certificates, and PyKMIP's own Python client to check what keysmith's Rust
//! client did.
//!
//! - The virtualenv is built once by `hack/kmip/venv.sh` (pinned by
//!   `hack/kmip/requirements.txt`) under `~/.cache/keysmith/` and reused; a lock file there
//!   serializes creation by concurrent test processes, a `OnceLock` by threads.
//! - PyKMIP speaks TLS 1.2 only and requires mutual TLS: the client certificate needs the
//!   clientAuth EKU, and its CN becomes the owner of every object it creates (other identities
//!   can neither Get nor Locate them). Its only AEAD cipher suites are ECDHE-ECDSA, so every
//!   certificate here is ECDSA P-256.
//! - The server runs as a [`Managed`] child through `hack/kmip/run_server.py`, which also gives
//!   the helper processes PyKMIP forks a death signal: nothing outlives the test binary.
//! - [`KmipServer::stop`] kills the server (its graceful shutdown takes seconds); the SQLite
//!   database commits every operation, so [`KmipServer::restart`] (same port) finds every
//!   object again.
//!
//! Everything here blocks (a start takes 1–3 s, a Python client call about 0.5 s).
//! `KEYSMITH_KEEP_KMIP=1` keeps the scratch directories (config, logs, database, certificates).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use super::process::Managed;

/// The identity (certificate CN) of the default client certificate of every [`KmipServer`].
pub const CLIENT_IDENTITY: &str = "keysmith-test";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 3;
const LOG_TAIL_LINES: usize = 40;

/// A test CA issuing ECDSA P-256 server and client certificates. Servers started with the same
/// CA ([`KmipServer::start_with_ca`]) share one trust bundle, as a `KeyManager` would.
pub struct KmipCa {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A client certificate and its private key (PKCS#8), both PEM.
#[derive(Clone, Debug)]
pub struct ClientCert {
    pub common_name: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl KmipCa {
    /// A new self-signed ECDSA P-256 CA with common name `common_name`.
    pub fn new(common_name: &str) -> Arc<Self> {
        let key = p256_key();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = params
            .self_signed(&key)
            .expect("self-sign the KMIP CA")
            .pem();
        Arc::new(Self {
            ca_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client certificate (clientAuth EKU) whose CN `common_name` PyKMIP takes as the owner.
    pub fn client_certificate(&self, common_name: &str) -> ClientCert {
        let key = p256_key();
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("client certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the client certificate");
        ClientCert {
            common_name: common_name.to_owned(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The server certificate for 127.0.0.1 and localhost (serverAuth EKU): (cert, key) PEM.
    fn server_certificate(&self) -> (String, String) {
        let key = p256_key();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "pykmip-server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

fn p256_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("generate an ECDSA P-256 key")
}

/// A running (or stopped) PyKMIP server.
pub struct KmipServer {
    // Field order is drop order: the process goes before its directory.
    process: Option<Managed>,
    name: String,
    port: u16,
    ca: Arc<KmipCa>,
    client: ClientCert,
    venv: PathBuf,
    runs: u32,
    startup: Duration,
    dir: ScratchDir,
}

impl KmipServer {
    /// Starts a server named `name` (used in messages and the scratch directory's name) with
    /// its own CA. Panics with the server's log tail when it does not come up.
    pub fn start(name: &str) -> Self {
        Self::start_with_ca(name, KmipCa::new(&format!("keysmith-test-kmip-ca-{name}")))
    }

    /// Starts a server whose certificates are issued by `ca`.
    pub fn start_with_ca(name: &str, ca: Arc<KmipCa>) -> Self {
        Self::try_start_with_ca(name, ca).unwrap_or_else(|e| panic!("KMIP server {name}: {e}"))
    }

    /// [`start_with_ca`](Self::start_with_ca), returning the error instead of panicking.
    pub fn try_start_with_ca(name: &str, ca: Arc<KmipCa>) -> Result<Self, String> {
        let venv = venv()?;
        let dir = ScratchDir::new(name)?;
        let (server_cert, server_key) = ca.server_certificate();
        let client = ca.client_certificate(CLIENT_IDENTITY);
        let d = dir.path();
        let write = |file: &str, text: &str| {
            write_private(&d.join(file), text.as_bytes())
                .map_err(|e| format!("write {}: {e}", d.join(file).display()))
        };
        write("ca.crt", ca.ca_pem())?;
        write("server.crt", &server_cert)?;
        write("server.key", &server_key)?;
        write("client.crt", &client.cert_pem)?;
        write("client.key", &client.key_pem)?;
        std::fs::create_dir_all(d.join("policies")).map_err(|e| format!("policy dir: {e}"))?;
        let mut server = Self {
            process: None,
            name: name.to_owned(),
            port: 0,
            ca,
            client,
            venv,
            runs: 0,
            startup: Duration::ZERO,
            dir,
        };
        let mut errors = Vec::new();
        for _ in 0..START_ATTEMPTS {
            // A free port can be taken between choosing and binding it: try another.
            server.port = free_port()?;
            match server.run() {
                Ok(()) => return Ok(server),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "did not start in {START_ATTEMPTS} attempts:\n{}",
            errors.join("\n\n")
        ))
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port (kept across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA that issued the server's and the clients' certificates.
    pub fn ca(&self) -> &Arc<KmipCa> {
        &self.ca
    }

    /// The CA certificate, PEM: what a client must trust.
    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    /// The default client identity (CN [`CLIENT_IDENTITY`]).
    pub fn client(&self) -> &ClientCert {
        &self.client
    }

    /// The default client certificate, PEM.
    pub fn client_cert_pem(&self) -> &str {
        &self.client.cert_pem
    }

    /// The default client certificate's private key, PEM.
    pub fn client_key_pem(&self) -> &str {
        &self.client.key_pem
    }

    /// Files in the scratch directory: `ca.crt`, `client.crt`, `client.key`, `server.crt`,
    /// `server.conf`, `pykmip.db`, `server-<n>.log` (for command-line tools such as openssl).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The SQLite database, kept across restarts.
    pub fn database(&self) -> PathBuf {
        self.file("pykmip.db")
    }

    /// How long the last start took, from spawning to a successful Discover Versions.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// Pid of the server process, if running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Managed::pid)
    }

    /// Kills the server (its own shutdown waits for its threads, seconds) and waits until it
    /// and the helper processes it forked are gone; the listening port is closed on return.
    /// Idempotent.
    pub fn stop(&mut self) {
        if let Err(e) = self.kill() {
            panic!("KMIP server {}: {e}", self.name);
        }
    }

    fn kill(&mut self) -> Result<(), String> {
        let Some(process) = self.process.take() else {
            return Ok(());
        };
        let helpers = children(process.pid());
        drop(process); // SIGKILL + wait
        // The helpers die of their death signal (hack/kmip/run_server.py).
        let deadline = Instant::now() + Duration::from_secs(10);
        while helpers.iter().any(|&pid| alive(pid)) {
            if Instant::now() > deadline {
                return Err(format!(
                    "helper processes {helpers:?} still running 10s after the server was killed"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts the stopped server again on the same port with the same certificates and
    /// database. Panics (with the log tail) if it does not come up, e.g. the port was taken.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.run() {
            panic!(
                "KMIP server {}: restart on port {}: {e}",
                self.name, self.port
            );
        }
    }

    /// Like [`restart`](Self::restart), on a new free port.
    pub fn restart_on_fresh_port(&mut self) {
        self.stop();
        self.port = free_port().unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = self.run() {
            panic!(
                "KMIP server {}: restart on port {}: {e}",
                self.name, self.port
            );
        }
    }

    /// The last lines of the current run's server log and of its stdout/stderr.
    pub fn log_tail(&self) -> String {
        let tail = |path: PathBuf| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "--- {} ---\n{}",
                path.display(),
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            )
        };
        format!(
            "{}\n{}",
            tail(self.file(&format!("server-{}.log", self.runs))),
            tail(self.file(&format!("server-{}.out", self.runs)))
        )
    }

    /// PyKMIP's Python client with the default identity.
    pub fn python(&self) -> PyKmip<'_> {
        self.python_as(&self.client)
    }

    /// PyKMIP's Python client with another identity (e.g. from
    /// [`KmipCa::client_certificate`]): objects are owned per identity.
    pub fn python_as<'a>(&'a self, client: &'a ClientCert) -> PyKmip<'a> {
        PyKmip {
            server: self,
            client,
        }
    }

    /// Registers a Secret Data object of type Password named `name` holding `value` with the
    /// Python client; returns its unique identifier.
    pub fn python_register_password(&self, name: &str, value: &[u8]) -> String {
        self.python().register_password(name, value)
    }

    /// The unique identifiers of the objects named `name` (Locate by Name), newest first.
    pub fn python_locate(&self, name: &str) -> Vec<String> {
        self.python().locate(name)
    }

    /// The value of the object `uid` (Get). Panics if the server cannot return it.
    pub fn python_get(&self, uid: &str) -> Vec<u8> {
        self.python().get(uid)
    }

    /// Spawns the server on `self.port` and waits until it serves KMIP over mutual TLS.
    fn run(&mut self) -> Result<(), String> {
        self.runs += 1;
        let started = Instant::now();
        let log = self.file(&format!("server-{}.log", self.runs));
        let config = format!(
            "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={server_crt}\n\
             key_path={server_key}\nca_path={ca}\nauth_suite=TLS1.2\nenable_tls_client_auth=True\n\
             policy_path={policies}\ndatabase_path={db}\nlogging_level=DEBUG\n",
            port = self.port,
            server_crt = self.file("server.crt").display(),
            server_key = self.file("server.key").display(),
            ca = self.file("ca.crt").display(),
            policies = self.file("policies").display(),
            db = self.database().display(),
        );
        std::fs::write(self.file("server.conf"), config)
            .map_err(|e| format!("write server.conf: {e}"))?;
        let mut cmd = python_command(&self.venv);
        cmd.arg(super::repo_root().join("hack/kmip/run_server.py"))
            .arg("-f")
            .arg(self.file("server.conf"))
            .arg("-l")
            .arg(&log)
            .current_dir(self.dir.path());
        let process = Managed::spawn(
            &format!("pykmip-server {}", self.name),
            cmd,
            &self.file(&format!("server-{}.out", self.runs)),
        )
        .map_err(|e| format!("spawn {}/bin/python: {e}", self.venv.display()))?;
        self.process = Some(process);
        match self.wait_ready(&log, started) {
            Ok(()) => {
                self.startup = started.elapsed();
                Ok(())
            }
            Err(e) => {
                let message = format!("{e}\n{}", self.log_tail());
                let _ = self.kill();
                Err(message)
            }
        }
    }

    fn wait_ready(&mut self, log: &Path, started: Instant) -> Result<(), String> {
        // The server logs this right after listen(); it binds only once its TLS context is set.
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("Starting connection service") {
                break;
            }
            if let Some(status) = self.process.as_mut().and_then(Managed::exited) {
                return Err(format!("pykmip-server exited ({status}) while starting"));
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "pykmip-server not listening after {READY_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Prove a full mutual-TLS KMIP exchange works before handing the server out.
        self.python()
            .try_versions()
            .map(|_| ())
            .map_err(|e| format!("listening, but Discover Versions failed: {e}"))
    }
}

impl Drop for KmipServer {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// PyKMIP's own client (`hack/kmip/kmip_client.py` in the venv) with one identity. Each call
/// opens one TLS connection; the methods without `try_` panic with the server log tail.
pub struct PyKmip<'a> {
    server: &'a KmipServer,
    client: &'a ClientCert,
}

/// An object as PyKMIP's client returns it (Get plus the Name and State attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipObject {
    /// `SECRET_DATA`, `SYMMETRIC_KEY`, ...
    pub object_type: String,
    /// For Secret Data: `PASSWORD` or `SEED`.
    pub data_type: Option<String>,
    pub value: Vec<u8>,
    pub names: Vec<String>,
    /// `PRE_ACTIVE`, `ACTIVE`, ...
    pub state: Option<String>,
}

impl PyKmip<'_> {
    /// Runs one client command; the JSON it prints, or its error line.
    pub fn try_run(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let files = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let cert = files.path().join("client.crt");
        let key = files.path().join("client.key");
        write_private(&cert, self.client.cert_pem.as_bytes()).map_err(|e| e.to_string())?;
        write_private(&key, self.client.key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let out = python_command(&self.server.venv)
            .arg(super::repo_root().join("hack/kmip/kmip_client.py"))
            .args(["--port", &self.server.port.to_string()])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--ca")
            .arg(self.server.file("ca.crt"))
            .args(args)
            .output()
            .map_err(|e| format!("run the PyKMIP client: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "PyKMIP client printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn run(&self, args: &[&str]) -> serde_json::Value {
        self.try_run(args).unwrap_or_else(|e| {
            panic!(
                "PyKMIP client `{}` as {} against KMIP server {} ({}) failed: {e}\n{}",
                args.join(" "),
                self.client.common_name,
                self.server.name,
                self.server.address(),
                self.server.log_tail()
            )
        })
    }

    /// The protocol versions the server announces (Discover Versions), e.g. `["2.0", "1.4", …]`.
    pub fn try_versions(&self) -> Result<Vec<String>, String> {
        let v = self.try_run(&["versions"])?;
        Ok(strings(&v["versions"]))
    }

    /// [`try_versions`](Self::try_versions), panicking on failure.
    pub fn versions(&self) -> Vec<String> {
        strings(&self.run(&["versions"])["versions"])
    }

    /// Registers a Secret Data object of type Password named `name` holding `value`
    /// (usage mask Verify); returns its unique identifier.
    pub fn register_password(&self, name: &str, value: &[u8]) -> String {
        let v = self.run(&["register-password", name, &hex(value)]);
        v["uid"].as_str().expect("uid in the answer").to_owned()
    }

    /// The unique identifiers of this identity's objects named `name`, newest first.
    pub fn locate(&self, name: &str) -> Vec<String> {
        strings(&self.run(&["locate", name])["uids"])
    }

    /// The object `uid` with its names and state, or the server's error (e.g.
    /// `KmipOperationFailure: OPERATION_FAILED: ITEM_NOT_FOUND - Could not locate object: 7`).
    pub fn try_get(&self, uid: &str) -> Result<KmipObject, String> {
        let v = self.try_run(&["get", uid])?;
        Ok(KmipObject {
            object_type: v["object_type"].as_str().unwrap_or_default().to_owned(),
            data_type: v["data_type"].as_str().map(str::to_owned),
            value: unhex(v["value_hex"].as_str().unwrap_or_default()),
            names: strings(&v["names"]),
            state: v["state"].as_str().map(str::to_owned),
        })
    }

    /// The object `uid`, panicking when the server cannot return it.
    pub fn get_object(&self, uid: &str) -> KmipObject {
        self.try_get(uid).unwrap_or_else(|e| {
            panic!(
                "PyKMIP client `get {uid}` as {} against KMIP server {} ({}) failed: {e}\n{}",
                self.client.common_name,
                self.server.name,
                self.server.address(),
                self.server.log_tail()
            )
        })
    }

    /// The value of the object `uid`.
    pub fn get(&self, uid: &str) -> Vec<u8> {
        self.get_object(uid).value
    }

    /// Destroys the object `uid` (PyKMIP refuses to destroy Active objects).
    pub fn destroy(&self, uid: &str) {
        self.run(&["destroy", uid]);
    }
}

/// The virtualenv with PyKMIP, built by `hack/kmip/venv.sh` on first use (once per process;
/// the script's lock file covers concurrent test processes).
pub fn venv() -> Result<PathBuf, String> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = super::repo_root().join("hack/kmip/venv.sh");
        let out = Command::new(&script)
            .output()
            .map_err(|e| format!("run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = stdout
            .lines()
            .last()
            .ok_or_else(|| format!("{} printed no directory", script.display()))?;
        Ok(PathBuf::from(dir.trim()))
    })
    .clone()
}

fn python_command(venv: &Path) -> Command {
    let mut cmd = Command::new(venv.join("bin/python"));
    // No __pycache__ next to the scripts in the checkout.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Child pids of `pid` (all its threads), from /proc.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex from the client"))
        .collect()
}

/// The server's scratch directory, removed on drop unless `KEYSMITH_KEEP_KMIP` is set.
struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    fn new(name: &str) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("keysmith-kmip-{name}-"))
            .tempdir()
            .map_err(|e| format!("scratch directory: {e}"))?;
        let scratch = Self {
            path: dir.keep(),
            keep: std::env::var_os("KEYSMITH_KEEP_KMIP").is_some(),
        };
        if !scratch.keep {
            // Also when the server lives in a `static` and is never dropped.
            super::process::remove_at_exit(scratch.path.clone());
        }
        Ok(scratch)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping KMIP server directory {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
