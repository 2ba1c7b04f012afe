//! Child processes that cannot outlive the test binary.
//!
//! Three layers make sure no etcd, kube-apiserver or kube-controller-manager is left behind:
//! 1. [`Managed`] kills its process when dropped (owned control planes, failed starts);
//! 2. every live child is also listed in a registry that an `atexit` hook kills, because the
//!    shared control plane lives in a `static` and statics are never dropped — the test
//!    harness exits through `exit()`, also when a test failed;
//! 3. every child gets `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it when the test
//!    binary dies without running `atexit` (abort, SIGKILL, Ctrl-C). The death signal fires when
//!    the *thread* that forked the child ends, so children are forked by one spawner thread
//!    that lives as long as the process.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

/// Pids of children that are still running, killed by the `atexit` hook.
static LIVE_PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Scratch directories removed by the `atexit` hook (those of the shared control plane).
static EXIT_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INSTALL_HOOK: Once = Once::new();

type SpawnRequest = (Command, Sender<io::Result<Child>>);

/// A child process that is killed (and reaped) when this value is dropped.
pub struct Managed {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Managed {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> io::Result<Self> {
        INSTALL_HOOK.call_once(|| {
            // SAFETY: registers a plain `extern "C"` function; no Rust state is captured.
            unsafe { libc::atexit(kill_leftovers_at_exit) };
        });
        let out = File::create(log)?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            let parent = libc::getpid();
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before the death signal was armed.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = spawn_from_long_lived_thread(command)?;
        lock(&LIVE_PIDS).push(child.id());
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process name given at spawn, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Some(description)` when the process has already exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state: {e}")),
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; true when it exited
    /// with status 0. Killed after the timeout.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        // SAFETY: signals our own, not yet reaped child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The last `lines` lines of the process log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        lock(&LIVE_PIDS).retain(|&p| p != self.child.id());
    }
}

/// Removes `dir` when the test binary exits (for state that lives in a `static`).
pub fn remove_at_exit(dir: PathBuf) {
    lock(&EXIT_DIRS).push(dir);
}

/// Forks `command` from a thread that never ends, so `PR_SET_PDEATHSIG` fires only when the
/// whole test binary dies rather than when the current test's thread finishes.
fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("controlplane-spawner".into())
            .spawn(move || serve_spawn_requests(rx))
            .expect("cannot start the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = channel();
    lock(spawner)
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread did not answer"))?
}

fn serve_spawn_requests(requests: Receiver<SpawnRequest>) {
    for (mut command, reply) in requests {
        let _ = reply.send(command.spawn());
    }
}

extern "C" fn kill_leftovers_at_exit() {
    let pids: Vec<u32> = match LIVE_PIDS.try_lock() {
        Ok(mut pids) => std::mem::take(&mut *pids),
        Err(_) => return,
    };
    for &pid in &pids {
        // SAFETY: plain syscalls on pids this process spawned and has not reaped yet.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for &pid in &pids {
        while Instant::now() < deadline {
            // SAFETY: reaps our own child; WNOHANG never blocks.
            let r =
                unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
            if r != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if let Ok(mut dirs) = EXIT_DIRS.try_lock() {
        for dir in dirs.drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Locks a mutex even if a panicking test poisoned it: the data (pids, paths) stays valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
