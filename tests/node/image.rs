//! The image `hack/image.sh` builds: what it contains and how it is configured, the same as
//! the Dockerfile describes, and assembled reproducibly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::support::image::{self, Image};
use crate::support::repo_root;

/// The image's configuration (`config` of the OCI image configuration).
fn config(image: &Image) -> serde_json::Value {
    let manifest = image::blob_json(&image.archive, &image.digest).expect("manifest");
    let digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    image::blob_json(&image.archive, digest).expect("image configuration")
}

/// The instructions of the Dockerfile's final stage, as (instruction, argument) pairs, with
/// continuation lines joined.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() && current.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = logical
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    logical[last_from..]
        .iter()
        .filter_map(|l| {
            let (instruction, argument) = l.split_once(' ')?;
            Some((instruction.to_owned(), argument.trim().to_owned()))
        })
        .collect()
}

/// A JSON-array argument (`["a", "b"]`) of ENTRYPOINT or CMD.
fn exec_form(argument: &str) -> Vec<String> {
    serde_json::from_str(argument).expect("exec form")
}

#[test]
fn the_dockerfile_describes_the_image_hack_image_sh_builds() {
    let image = image::operator();
    let config = config(image);
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    let config = &config["config"];
    let dockerfile =
        std::fs::read_to_string(repo_root().join("Dockerfile")).expect("read Dockerfile");
    let stage = final_stage(&dockerfile);
    let one = |instruction: &str| -> Vec<&String> {
        stage
            .iter()
            .filter(|(i, _)| i == instruction)
            .map(|(_, a)| a)
            .collect()
    };

    let user = one("USER");
    assert_eq!(user.len(), 1, "{stage:?}");
    assert_eq!(config["User"], user[0].as_str(), "USER");
    assert_eq!(config["User"], "65532:65532");

    let entrypoint = one("ENTRYPOINT");
    assert_eq!(
        serde_json::to_value(exec_form(entrypoint[0])).expect("json"),
        config["Entrypoint"],
        "ENTRYPOINT"
    );
    let cmd = one("CMD");
    assert_eq!(
        serde_json::to_value(exec_form(cmd[0])).expect("json"),
        config["Cmd"],
        "CMD"
    );
    assert_eq!(config["Cmd"], serde_json::json!(["run"]));

    let mut exposed: Vec<String> = one("EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|p| {
            if p.contains('/') {
                p.to_owned()
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    exposed.sort();
    let mut image_ports: Vec<String> = config["ExposedPorts"]
        .as_object()
        .expect("ExposedPorts")
        .keys()
        .cloned()
        .collect();
    image_ports.sort();
    assert_eq!(exposed, image_ports, "EXPOSE");
    assert_eq!(image_ports, ["8080/tcp", "8081/tcp"]);

    // Every LABEL of the Dockerfile, with its value; the version and revision are filled in
    // by the build (an ARG in the Dockerfile), the rest is equal.
    let mut dockerfile_labels = BTreeMap::new();
    for argument in one("LABEL") {
        for pair in shell_words(argument) {
            let (key, value) = pair.split_once('=').expect("LABEL key=value");
            dockerfile_labels.insert(key.to_owned(), value.to_owned());
        }
    }
    let image_labels: BTreeMap<String, String> = config["Labels"]
        .as_object()
        .expect("Labels")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        dockerfile_labels.keys().collect::<Vec<_>>(),
        image_labels.keys().collect::<Vec<_>>(),
        "LABEL keys"
    );
    for key in [
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.source",
        "org.opencontainers.image.licenses",
    ] {
        assert!(image_labels.contains_key(key), "{key} missing");
    }
    for (key, value) in &dockerfile_labels {
        if value.starts_with('$') {
            continue;
        }
        assert_eq!(&image_labels[key], value, "LABEL {key}");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(image_labels["org.opencontainers.image.version"], version);
    assert!(
        one("ARG").contains(&&format!("VERSION={version}")),
        "the Dockerfile's ARG VERSION default is not {version}"
    );
}

/// Splits `a="b c" d=e` into `a=b c` and `d=e` (the quoting LABEL uses).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[test]
fn the_image_holds_the_static_binary_the_nonroot_user_and_a_ca_bundle() {
    let image = image::operator();
    let manifest = image::blob_json(&image.archive, &image.digest).expect("manifest");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer_digest = layers[0]["digest"].as_str().expect("layer digest");
    let hex = layer_digest.trim_start_matches("sha256:");
    let dir = tempfile::tempdir().expect("tempdir");
    let layer = dir.path().join("layer.tar.gz");
    std::fs::write(
        &layer,
        image::extract(&image.archive, &format!("blobs/sha256/{hex}")).expect("layer"),
    )
    .expect("write layer");
    let listing = Command::new("tar")
        .args(["--full-time", "-tvzf"])
        .arg(&layer)
        .env("TZ", "UTC")
        .output()
        .expect("tar");
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some((fields.first()?.to_owned(), fields.last()?.to_owned()))
        })
        .collect();
    let names: Vec<&str> = entries
        .iter()
        .map(|(_, n)| n.trim_end_matches('/'))
        .collect();
    for expected in [
        "./usr/local/bin/keysmith",
        "./etc/passwd",
        "./etc/group",
        "./etc/ssl/certs/ca-certificates.crt",
        "./tmp",
    ] {
        assert!(names.contains(&expected), "{expected} missing:\n{listing}");
    }
    // Owned by root, every entry with the same timestamp: the commit's.
    assert!(
        listing.lines().all(|l| l.contains(" 0/0 ")),
        "owners:\n{listing}"
    );
    let times: std::collections::BTreeSet<String> = listing
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some(format!("{} {}", fields.get(3)?, fields.get(4)?))
        })
        .collect();
    assert_eq!(times.len(), 1, "timestamps: {times:?}");
    let revision = config(image)["config"]["Labels"]["org.opencontainers.image.revision"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let commit_time = Command::new("git")
        .args([
            "show",
            "-s",
            "--format=%cd",
            "--date=format-local:%Y-%m-%d %H:%M:%S",
        ])
        .arg(&revision)
        .env("TZ", "UTC")
        .current_dir(repo_root())
        .output()
        .expect("git");
    if commit_time.status.success() {
        let commit_time = String::from_utf8_lossy(&commit_time.stdout)
            .trim()
            .to_owned();
        assert!(
            times.contains(&commit_time),
            "files dated {times:?}, commit {revision} at {commit_time}"
        );
    }
    let mode = |name: &str| {
        entries
            .iter()
            .find(|(_, n)| n.trim_end_matches('/') == name)
            .map(|(m, _)| *m)
            .unwrap_or_default()
    };
    // Every directory is 0755 (but /tmp, 1777), whoever built it with whatever umask.
    for (entry_mode, name) in &entries {
        let expected = match name.trim_end_matches('/') {
            "./tmp" => "drwxrwxrwt",
            _ if entry_mode.starts_with('d') => "drwxr-xr-x",
            _ => continue,
        };
        assert_eq!(*entry_mode, expected, "{name}");
    }
    assert_eq!(mode("."), "drwxr-xr-x", "the root directory");
    assert_eq!(mode("./usr/local/bin/keysmith"), "-rwxr-xr-x");

    let unpacked = dir.path().join("rootfs");
    std::fs::create_dir(&unpacked).expect("mkdir");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .expect("tar");
    assert!(out.status.success());
    let passwd = std::fs::read_to_string(unpacked.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.contains("nonroot:x:65532:65532:"),
        "/etc/passwd: {passwd}"
    );
    let group = std::fs::read_to_string(unpacked.join("etc/group")).expect("group");
    assert!(group.contains("nonroot:x:65532:"), "/etc/group: {group}");
    let bundle =
        std::fs::read_to_string(unpacked.join("etc/ssl/certs/ca-certificates.crt")).expect("CA");
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 10);

    // Static: no program interpreter, no shared library; and it runs.
    let binary = unpacked.join("usr/local/bin/keysmith");
    let elf = Command::new("readelf")
        .args(["-l", "-d"])
        .arg(&binary)
        .output()
        .expect("readelf");
    let elf = String::from_utf8_lossy(&elf.stdout);
    assert!(!elf.contains("NEEDED"), "{elf}");
    assert!(!elf.contains("INTERP"), "{elf}");
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("run");
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    // No build paths: neither this checkout, nor the cargo home, nor the target directory.
    let bytes = std::fs::read(&binary).expect("read binary");
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or(format!("{home}/.cargo"));
    let target_dir =
        std::env::var("CARGO_TARGET_DIR").unwrap_or(format!("{home}/.cache/keysmith/target"));
    for path in [
        repo_root().to_string_lossy().into_owned(),
        format!("{cargo_home}/registry"),
        target_dir,
    ] {
        assert!(
            !bytes.windows(path.len()).any(|w| w == path.as_bytes()),
            "the binary holds the build path {path}"
        );
    }
    // The dependency list cargo-auditable embeds.
    assert!(
        section_exists(&binary, ".dep-v0"),
        "no .dep-v0 section (cargo auditable)"
    );
}

fn section_exists(binary: &Path, name: &str) -> bool {
    let out = Command::new("readelf")
        .arg("-S")
        .arg(binary)
        .output()
        .expect("readelf");
    String::from_utf8_lossy(&out.stdout).contains(name)
}

#[test]
fn the_sbom_next_to_the_archive_lists_the_shipped_dependencies() {
    let image = image::operator();
    let name = image
        .archive
        .file_name()
        .and_then(|n| n.to_str())
        .expect("archive name")
        .replace(".oci.tar", ".cdx.json");
    let sbom: serde_json::Value = serde_json::from_slice(
        &std::fs::read(image.archive.with_file_name(name)).expect("SBOM next to the archive"),
    )
    .expect("SBOM is JSON");
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let components: Vec<String> = sbom["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            format!(
                "{}@{}",
                c["name"].as_str().unwrap_or(""),
                c["version"].as_str().unwrap_or("")
            )
        })
        .collect();
    // What the lock file pins for crates every build of the operator links.
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).expect("Cargo.lock");
    for krate in ["kube-client", "aws-lc-rs", "rcgen", "tokio"] {
        let version = lock
            .split("[[package]]")
            .find_map(|p| {
                p.contains(&format!("name = \"{krate}\"\n")).then(|| {
                    p.lines()
                        .find_map(|l| l.strip_prefix("version = \""))
                        .map(|v| v.trim_end_matches('"').to_owned())
                })?
            })
            .expect("in Cargo.lock");
        assert!(
            components.contains(&format!("{krate}@{version}")),
            "{krate}@{version} not in the SBOM"
        );
    }
}

#[test]
fn assembling_the_same_files_twice_gives_the_same_digest() {
    // The step after the compiler: hack/oci-archive.sh over the same root file system, at
    // different times and in different directories, yields one digest.
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir");
    std::fs::write(rootfs.join("bin/hello"), b"#!/bin/true\n").expect("write");
    let pack = |name: &str| {
        let out = Command::new(repo_root().join("hack/oci-archive.sh"))
            .arg(&rootfs)
            .arg(dir.path().join(name))
            .arg("example.com/hello:1")
            .args([
                "--config.user",
                "65532:65532",
                "--config.entrypoint",
                "/bin/hello",
            ])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .expect("run oci-archive.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let first = pack("a.tar");
    // Later, with the files touched again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let now = std::time::SystemTime::now();
    std::fs::File::options()
        .write(true)
        .open(rootfs.join("bin/hello"))
        .and_then(|f| f.set_modified(now))
        .expect("touch");
    let second = pack("b.tar");
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(first, second);
    let a = std::fs::read(dir.path().join("a.tar")).expect("a");
    let b = std::fs::read(dir.path().join("b.tar")).expect("b");
    assert!(a == b, "the archives differ");
    // And a changed file changes it.
    std::fs::write(rootfs.join("bin/hello"), b"#!/bin/false\n").expect("write");
    assert_ne!(pack("c.tar"), first);
}
