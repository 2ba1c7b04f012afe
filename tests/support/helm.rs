//! Helm, built from its Go module by `hack/helm/build.sh` (or `$KEYSMITH_HELM`), and the
//! chart in `charts/keysmith`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::repo_root;

/// The `helm` binary: `$KEYSMITH_HELM`, or what `hack/helm/build.sh` prints (it builds Helm
/// the first time).
pub fn binary() -> PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Some(path) = std::env::var_os("KEYSMITH_HELM") {
            return PathBuf::from(path);
        }
        let out = Command::new(repo_root().join("hack/helm/build.sh"))
            .output()
            .expect("run hack/helm/build.sh");
        assert!(
            out.status.success(),
            "hack/helm/build.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// The chart's directory.
pub fn chart() -> PathBuf {
    repo_root().join("charts/keysmith")
}

/// Runs `helm` with `args` (Helm's own caches in a scratch directory, never the user's).
pub fn run(args: &[&str]) -> Output {
    let home = std::env::temp_dir().join("keysmith-helm-home");
    Command::new(binary())
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm")
}

/// `helm template keysmith charts/keysmith -n <namespace> <extra>`: the rendered manifests.
pub fn template(namespace: &str, extra: &[&str]) -> Result<String, String> {
    let chart = chart();
    let chart = chart.to_str().expect("chart path is UTF-8");
    let mut args = vec!["template", "keysmith", chart, "--namespace", namespace];
    args.extend_from_slice(extra);
    let out = run(&args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
