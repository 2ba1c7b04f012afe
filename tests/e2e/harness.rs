//! The harness leaves nothing behind: a copy of this test binary starts the shared control
//! plane and then fails (a panicking test) or is killed outright, and the control plane's
//! processes must be gone afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;

const CHILD_TEST: &str = "harness::child_starts_control_plane_then_dies";
const PIDFILE_ENV: &str = "KEYSMITH_SELFTEST_PIDFILE";
const MODE_ENV: &str = "KEYSMITH_SELFTEST_MODE";

/// Runs only inside the child binary started by the tests below (which set the pidfile).
#[test]
#[ignore = "started by the harness self-tests in a child process"]
fn child_starts_control_plane_then_dies() {
    let pidfile = PathBuf::from(std::env::var_os(PIDFILE_ENV).expect("run by the self-tests"));
    let cp = support::shared();
    let pids: Vec<String> = cp.pids().iter().map(u32::to_string).collect();
    let report = format!("{}\n{}\n", pids.join(" "), cp.kubeconfig().display());
    std::fs::write(pidfile.with_extension("tmp"), report).expect("write pids");
    std::fs::rename(pidfile.with_extension("tmp"), &pidfile).expect("publish pids");
    match std::env::var(MODE_ENV).as_deref() {
        Ok("panic") => panic!("deliberate failure: the harness must still stop the control plane"),
        _ => std::thread::sleep(Duration::from_secs(600)), // killed by the parent
    }
}

#[test]
fn control_plane_is_stopped_when_a_test_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, started) = start_child(dir.path(), "panic");
    let status = wait_with_timeout(&mut child, Duration::from_secs(300));
    assert_eq!(
        status.code(),
        Some(101),
        "the child's test must fail; {}",
        log(dir.path())
    );
    let started = started.unwrap_or_else(|| read_started(dir.path()));
    assert_all_gone(&started.pids);
    assert!(
        !started.scratch_dir.exists(),
        "scratch directory {} left behind",
        started.scratch_dir.display()
    );
}

#[test]
fn control_plane_is_stopped_when_the_test_binary_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, started) = start_child(dir.path(), "hang");
    let started = started.expect("the hanging child published its pids");
    // SIGKILL: no destructor, no atexit hook; only PR_SET_PDEATHSIG can clean up.
    child.kill().expect("kill child");
    let _ = child.wait();
    assert_all_gone(&started.pids);
    let _ = std::fs::remove_dir_all(&started.scratch_dir); // nothing could remove it
}

struct Started {
    pids: Vec<u32>,
    scratch_dir: PathBuf,
}

/// Starts the child test and waits until it has published its control plane's pids (for
/// the "hang" mode) or exited (for "panic", which may finish before we look).
fn start_child(dir: &Path, mode: &str) -> (Child, Option<Started>) {
    let exe = std::env::current_exe().expect("current test binary");
    let bin_dir = support::binaries().expect("control plane binaries");
    let mut child = Command::new(exe)
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PIDFILE_ENV, dir.join("pids"))
        .env(MODE_ENV, mode)
        .env("KEYSMITH_CONTROLPLANE_BIN", bin_dir)
        .env_remove("KEYSMITH_KEEP_CONTROLPLANE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("child.log")).expect("log"))
        .stderr(std::fs::File::create(dir.join("child.err")).expect("log"))
        .spawn()
        .expect("start child test binary");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if dir.join("pids").exists() {
            return (child, Some(read_started(dir)));
        }
        if mode == "panic" && matches!(child.try_wait(), Ok(Some(_))) {
            return (child, None);
        }
        assert!(
            Instant::now() < deadline,
            "child never started a control plane; {}",
            log(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_started(dir: &Path) -> Started {
    let text = std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_else(|e| panic!("child published no pids ({e}); {}", log(dir)));
    let mut lines = text.lines();
    let pids: Vec<u32> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert_eq!(
        pids.len(),
        3,
        "etcd, kube-apiserver and kube-controller-manager"
    );
    let kubeconfig = PathBuf::from(lines.next().expect("kubeconfig line"));
    let scratch_dir = kubeconfig.parent().expect("scratch dir").to_owned();
    Started { pids, scratch_dir }
}

fn assert_all_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let running: Vec<u32> = pids.iter().copied().filter(|&p| is_running(p)).collect();
        if running.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "control plane processes still running 15s after the test binary ended: {running:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True while `pid` exists and is not a zombie (a zombie has stopped running for good).
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.trim().chars().next());
            state != Some('Z') && state != Some('X')
        }
        Err(_) => false,
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child test binary did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log(dir: &Path) -> String {
    let out = std::fs::read_to_string(dir.join("child.log")).unwrap_or_default();
    let err = std::fs::read_to_string(dir.join("child.err")).unwrap_or_default();
    format!("child stdout:\n{out}\nchild stderr:\n{err}")
}
