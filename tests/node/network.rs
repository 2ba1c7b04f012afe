//! The node's pod network never leaves the machine: seen from a pod, the API server (as the
//! `kubernetes` Service) is the only thing that answers. A listener on the host's own
//! addresses and one behind another interface (a network namespace of this test's own,
//! joined by a veth, standing in for "the outside") are both reachable from the host and
//! silent from the pod: packets to them are dropped, not refused.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cluster::{kubectl_ok, kubectl_stdin_ok};
use crate::support::node::{self, Node};
use crate::support::process::Managed;
use crate::support::{ControlPlane, free_ports, image, repo_root};

const OUTSIDE_NETNS: &str = "keysmith-outside";
const OUTSIDE_HOST_LINK: &str = "ks-outside0";
const OUTSIDE_ADDRESS: &str = "10.234.0.2";
/// The node's pod addresses (hack/node/network.sh).
const POD_RANGE: &str = "10.233.0.0/24";

#[tokio::test]
async fn the_pod_network_reaches_the_api_server_and_nothing_else() {
    if let Some(why) = node::unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let _one = node::one_at_a_time().await;
    let before = node::host_state().expect("host state");
    {
        let work = tempfile::tempdir().expect("tempdir");
        let probe = probe_image(work.path());

        // Something listening on every address of the host, and something behind another
        // interface; the host reaches both.
        let host_listener = TcpListener::bind("0.0.0.0:0").expect("listen");
        let host_port = host_listener.local_addr().expect("addr").port();
        let host_ip = host_address();
        let [outside_port] = free_ports().expect("port");
        let outside = Outside::create(outside_port, work.path());
        assert!(
            connects(&format!("{host_ip}:{host_port}")),
            "the host cannot reach its own listener"
        );
        assert!(
            connects(&format!("{OUTSIDE_ADDRESS}:{outside_port}")),
            "the host cannot reach the other interface"
        );

        let cp = ControlPlane::start_for_node().expect("control plane");
        let node = Node::start(&cp).await.expect("node");
        node.import_image(&probe).expect("import the probe image");
        let targets = [
            "10.0.0.1:443".to_owned(),
            format!("{host_ip}:{host_port}"),
            format!("10.233.0.1:{host_port}"),
            format!("10.233.0.1:{}", cp.apiserver_port()),
            format!("{OUTSIDE_ADDRESS}:{outside_port}"),
        ];
        let results = run_probe(&cp, &node, &targets).await;
        eprintln!("seen from a pod: {results:#?}");
        assert_eq!(
            results[0],
            (targets[0].clone(), "open".to_owned()),
            "the API server"
        );
        for (target, result) in &results[1..] {
            assert_eq!(result, "timeout", "{target}: must be dropped");
        }
        // Dropped on the way out, not on the way back: nothing from a pod got there.
        assert_eq!(
            outside.packets_from_pods(),
            0,
            "packets from the pods reached the other interface"
        );
        node.stop().expect("node teardown");
        drop(outside);
        drop(host_listener);
    }
    let left = node::leftovers(&before).expect("host state");
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
}

/// Builds `tests/node/netprobe/netprobe.c` (static, musl) into an image archive.
fn probe_image(work: &Path) -> std::path::PathBuf {
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("mkdir");
    let out = Command::new("musl-gcc")
        .args(["-Os", "-Wall", "-Werror", "-static", "-o"])
        .arg(rootfs.join("netprobe"))
        .arg(repo_root().join("tests/node/netprobe/netprobe.c"))
        .output()
        .expect("musl-gcc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = work.join("netprobe.oci.tar");
    let out = Command::new(repo_root().join("hack/oci-archive.sh"))
        .arg(&rootfs)
        .arg(&archive)
        .arg("keysmith.test/netprobe:1")
        .args([
            "--config.user",
            "65532:65532",
            "--config.entrypoint",
            "/netprobe",
        ])
        .output()
        .expect("oci-archive.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = image::read(&archive).expect("a readable archive");
    archive
}

/// Runs the probe as a pod and returns what it saw, target by target.
async fn run_probe(cp: &ControlPlane, node: &Node, targets: &[String]) -> Vec<(String, String)> {
    let args: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: netprobe\nspec:\n  restartPolicy: Never\n  automountServiceAccountToken: false\n  securityContext: {{runAsNonRoot: true, runAsUser: 65532, seccompProfile: {{type: RuntimeDefault}}}}\n  containers:\n  - name: probe\n    image: keysmith.test/netprobe:1\n    imagePullPolicy: Never\n    args: [{}]\n    securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}\n",
        args.join(", ")
    );
    kubectl_stdin_ok(cp, &["apply", "-n", "default", "-f", "-"], &pod);
    let deadline = Instant::now() + Duration::from_secs(120);
    let log = loop {
        let out = cp
            .kubectl_command()
            .args(["logs", "-n", "default", "netprobe"])
            .output()
            .expect("kubectl");
        let log = String::from_utf8_lossy(&out.stdout).into_owned();
        if log.lines().any(|l| l == "done") {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "the probe did not finish: {log}{}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            kubectl_ok(cp, &["describe", "pod", "-n", "default", "netprobe"]),
            node.diagnosis()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    kubectl_ok(
        cp,
        &[
            "delete",
            "pod",
            "netprobe",
            "-n",
            "default",
            "--grace-period=1",
        ],
    );
    log.lines()
        .filter_map(|l| {
            let (target, result) = l.split_once(' ')?;
            Some((target.to_owned(), result.to_owned()))
        })
        .collect()
}

/// The host's first global IPv4 address.
fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("keysmith0") && !l.contains(OUTSIDE_HOST_LINK))
        .find_map(|l| {
            let cidr = l.split_whitespace().skip_while(|f| *f != "inet").nth(1)?;
            Some(cidr.split('/').next()?.to_owned())
        })
        .expect("a global IPv4 address")
}

fn connects(target: &str) -> bool {
    let address: std::net::SocketAddr = target.parse().expect("address");
    std::net::TcpStream::connect_timeout(&address, Duration::from_secs(3)).is_ok()
}

/// A network namespace behind a veth (10.234.0.1 on the host, 10.234.0.2 inside) with a
/// listener: "another interface" that forwarding from the pod bridge must not reach.
/// Removed on drop.
struct Outside {
    /// The listener inside; killed (by `Managed`) after the namespace is deleted.
    listener: Option<Managed>,
    /// `ip netns add` makes /run/netns (a mount of itself) the first time: undone on drop.
    made_netns_dir: bool,
}

impl Outside {
    fn create(port: u16, dir: &Path) -> Self {
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip");
            assert!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let made_netns_dir = !Path::new("/run/netns").exists();
        ip(&["netns", "add", OUTSIDE_NETNS]);
        // From here on a failed step still removes what was made (Drop).
        let mut outside = Self {
            listener: None,
            made_netns_dir,
        };
        ip(&[
            "link",
            "add",
            OUTSIDE_HOST_LINK,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            OUTSIDE_NETNS,
        ]);
        ip(&["addr", "add", "10.234.0.1/24", "dev", OUTSIDE_HOST_LINK]);
        ip(&["link", "set", OUTSIDE_HOST_LINK, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", OUTSIDE_NETNS, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&[
            "addr",
            "add",
            &format!("{OUTSIDE_ADDRESS}/24"),
            "dev",
            "eth0",
        ]);
        inside(&["link", "set", "eth0", "up"]);
        inside(&["link", "set", "lo", "up"]);
        // A rule without a target only counts: packets from the pod range that got here.
        ip(&[
            "netns",
            "exec",
            OUTSIDE_NETNS,
            "iptables",
            "-w",
            "-A",
            "INPUT",
            "-s",
            POD_RANGE,
        ]);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", OUTSIDE_NETNS, "python3", "-c"])
            .arg(format!(
                "import socket\ns = socket.socket()\ns.bind(('{OUTSIDE_ADDRESS}', {port}))\ns.listen(16)\nwhile True:\n    c, _ = s.accept()\n    c.close()\n"
            ));
        outside.listener = Some(
            Managed::spawn("outside-listener", cmd, &dir.join("outside.log")).expect("listener"),
        );
        // The listener is up once the host can connect.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !connects(&format!("{OUTSIDE_ADDRESS}:{port}")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        outside
    }
}

impl Outside {
    /// How many packets from the pod range reached the other side of the veth.
    fn packets_from_pods(&self) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                OUTSIDE_NETNS,
                "iptables",
                "-w",
                "-L",
                "INPUT",
            ])
            .args(["-v", "-x", "-n"])
            .output()
            .expect("iptables");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(POD_RANGE))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .expect("the counting rule")
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        // The veth goes with the namespace; the listener is killed by Managed after this.
        let _ = Command::new("ip")
            .args(["link", "delete", OUTSIDE_HOST_LINK])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "delete", OUTSIDE_NETNS])
            .output();
        if self.made_netns_dir {
            let _ = Command::new("umount").arg("/run/netns").output();
            let _ = std::fs::remove_dir("/run/netns");
        }
    }
}
