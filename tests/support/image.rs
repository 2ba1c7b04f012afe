//! The operator image that `hack/image.sh` builds (an OCI archive), for the node tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Result, repo_root};

/// An OCI image archive and what its index says about it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The archive file.
    pub archive: PathBuf,
    /// `repository:tag`, as the archive names it.
    pub reference: String,
    /// The reference without the tag.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest digest (`sha256:...`).
    pub digest: String,
}

/// The operator image: `$KEYSMITH_IMAGE` (an archive `hack/test.sh` built), or what
/// `hack/image.sh` builds now (a no-op when the release binary is up to date).
pub fn operator() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let archive = match std::env::var_os("KEYSMITH_IMAGE") {
            Some(path) => PathBuf::from(path),
            None => {
                let out = Command::new(repo_root().join("hack/image.sh"))
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .expect("run hack/image.sh");
                assert!(out.status.success(), "hack/image.sh failed: {}", out.status);
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
        };
        read(&archive).unwrap_or_else(|e| panic!("{}: {e}", archive.display()))
    })
}

/// Reads the reference and manifest digest from an archive's `index.json`.
pub fn read(archive: &Path) -> Result<Image> {
    let index: serde_json::Value = serde_json::from_slice(&extract(archive, "index.json")?)?;
    let manifest = &index["manifests"][0];
    let reference = manifest["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .ok_or("index.json names no reference")?
        .to_owned();
    let (repository, tag) = reference
        .rsplit_once(':')
        .ok_or("the reference has no tag")?;
    Ok(Image {
        archive: archive.to_owned(),
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: manifest["digest"]
            .as_str()
            .ok_or("index.json has no digest")?
            .to_owned(),
        reference,
    })
}

/// One file of the archive (`index.json`, `blobs/sha256/<hex>`).
pub fn extract(archive: &Path, member: &str) -> Result<Vec<u8>> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(format!("./{member}"))
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "tar -xOf {} ./{member}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out.stdout)
}

/// A blob of the archive by digest, parsed as JSON (a manifest or an image configuration).
pub fn blob_json(archive: &Path, digest: &str) -> Result<serde_json::Value> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or("not a sha256 digest")?;
    Ok(serde_json::from_slice(&extract(
        archive,
        &format!("blobs/sha256/{hex}"),
    )?)?)
}
