//! A real OpenSSH server on a free 127.0.0.1 port, run as the current user, for proving
//! that generated keys and certificates log in. Stopped (killed) when dropped.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::Managed;

/// A running sshd.
pub struct Sshd {
    _process: Managed,
    port: u16,
    dir: tempfile::TempDir,
}

/// Writes `text` to `path` with mode 0600 (ssh and sshd refuse wider permissions).
pub fn write_private(path: &Path, text: &[u8]) {
    std::fs::write(path, text).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

impl Sshd {
    /// Starts sshd accepting `authorized_keys` and, if given, certificates signed by the CA
    /// public key `trusted_ca`.
    pub fn start(authorized_keys: &str, trusted_ca: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path("host_key"))
            .status()
            .expect("ssh-keygen");
        assert!(status.success(), "host key");
        write_private(&path("authorized_keys"), authorized_keys.as_bytes());
        write_private(&path("ca.pub"), trusted_ca.unwrap_or("").as_bytes());
        // sshd running as root wants its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nTrustedUserCAKeys {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
            path("host_key").display(),
            path("sshd.pid").display(),
            path("authorized_keys").display(),
            path("ca.pub").display(),
        );
        std::fs::write(path("sshd_config"), config).expect("config");
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.args(["-D", "-e", "-f"]).arg(path("sshd_config"));
        let process = Managed::spawn("sshd", cmd, &path("sshd.log")).expect("start sshd");
        let sshd = Self {
            _process: process,
            port,
            dir,
        };
        sshd.wait_listening();
        sshd
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replaces the authorized_keys file (sshd reads it on every login).
    pub fn set_authorized_keys(&self, keys: &str) {
        write_private(&self.dir.path().join("authorized_keys"), keys.as_bytes());
    }

    /// sshd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Logs in as the current user with `private_key` (and `certificate`), runs `true`;
    /// returns (success, ssh's stderr).
    pub fn login(&self, private_key: &[u8], certificate: Option<&[u8]>) -> (bool, String) {
        let files = tempfile::tempdir().expect("tempdir");
        let key: PathBuf = files.path().join("id");
        write_private(&key, private_key);
        let mut cmd = Command::new("ssh");
        cmd.arg("-i").arg(&key);
        if let Some(certificate) = certificate {
            let cert = files.path().join("id-cert.pub");
            write_private(&cert, certificate);
            cmd.arg("-o")
                .arg(format!("CertificateFile={}", cert.display()));
        }
        let user = current_user();
        let out = cmd
            .args(["-p", &self.port.to_string()])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
            ])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
                "-F",
                "/dev/null",
            ])
            .arg(format!("{user}@127.0.0.1"))
            .arg("true")
            .output()
            .expect("run ssh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The name of the user running the tests (`id -un`; $USER may be unset under CI).
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
