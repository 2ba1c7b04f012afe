//! `crds/` is generated from `src/api/` by `keysmith crds`; this fails when it is stale.

use std::path::Path;

#[test]
fn crds_directory_matches_the_api_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let expected = keysmith::api::render_crds().expect("render CRDs");
    let mut stale = Vec::new();
    for (file, yaml) in &expected {
        match std::fs::read_to_string(dir.join(file)) {
            Ok(on_disk) if on_disk == *yaml => {}
            Ok(_) => stale.push(format!("{file} differs")),
            Err(e) => stale.push(format!("{file}: {e}")),
        }
    }
    let mut extra: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| !expected.iter().any(|(file, _)| file == name))
        .collect();
    extra.sort();
    stale.extend(
        extra
            .into_iter()
            .map(|name| format!("{name} is not generated")),
    );
    assert!(
        stale.is_empty(),
        "crds/ is stale ({}); run `cargo run -- crds`",
        stale.join(", ")
    );
}

#[test]
fn every_kind_is_in_the_keysmith_category_with_a_status_subresource() {
    for (file, crd) in keysmith::api::crds() {
        let names = &crd.spec.names;
        assert_eq!(
            names.categories.as_deref(),
            Some(&["keysmith".to_owned()][..]),
            "{file}"
        );
        assert_eq!(crd.spec.group, keysmith::API_GROUP, "{file}");
        assert_eq!(crd.spec.scope, "Namespaced", "{file}");
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{file}: status subresource"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            columns.contains(&"Ready") && columns.contains(&"Age"),
            "{file}: {columns:?}"
        );
    }
}

/// Every `format` in the schemas is one the API server knows (it warns on every apply of an
/// unknown one, e.g. schemars' `uint32`).
#[test]
fn schemas_use_only_formats_kubernetes_knows() {
    // k8s.io/kube-openapi/pkg/validation/strfmt, as the API server registers them.
    const KNOWN: &[&str] = &[
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "binary",
        "date",
        "date-time",
        "duration",
        "password",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
    ];
    for (file, yaml) in keysmith::api::render_crds().expect("render CRDs") {
        for line in yaml.lines() {
            if let Some(format) = line.trim().strip_prefix("format: ") {
                assert!(KNOWN.contains(&format), "{file}: format {format}");
            }
        }
    }
}
