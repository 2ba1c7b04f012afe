//! Not a test: `hack/controlplane/up.sh` runs this to give a person the same control plane
//! the tests use, until they press Enter (or Ctrl-C, which stops every process as well).

use std::io::BufRead;

use crate::support;

#[test]
#[ignore = "started by hack/controlplane/up.sh"]
fn serve_control_plane_until_enter() {
    let cp = support::shared();
    println!("\nexport KUBECONFIG={}", cp.kubeconfig().display());
    println!(
        "control plane {} is running; press Enter to stop it",
        cp.version()
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}
