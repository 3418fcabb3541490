//! crds/ holds exactly what `edgeone-cert-operator crd` generates from src/api/, so the
//! CRD users install (`kubectl apply -f crds/`, the Helm chart) never drifts from the
//! types the operator reads and writes.

use std::path::{Path, PathBuf};

use edgeone_cert_operator::api::{CRD_FILE, crd, crd_yaml};

const FIX: &str = "run `make crds` and commit the result";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_crd_file_is_the_generated_crd() {
    let generated = crd_yaml().expect("the CRD renders as YAML");
    let path = repo_root().join(CRD_FILE);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}; {FIX}", path.display()));
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "{CRD_FILE} differs from the CRD generated from src/api/ (first at line {}):\n  \
             file:      {:?}\n  generated: {:?}\n{FIX}",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn crds_holds_no_other_files() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("crds"))
        .expect("crds/ exists")
        .map(|entry| entry.expect("crds/ is readable").path())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [repo_root().join(CRD_FILE)],
        "crds/ must hold only generated CRDs; remove stray files or {FIX}"
    );
}

#[test]
fn the_yaml_reads_back_as_the_crd() {
    let yaml = crd_yaml().expect("the CRD renders as YAML");
    let read: serde_json::Value = serde_saphyr::from_str(&yaml).expect("the CRD YAML parses");
    let expected = serde_json::to_value(crd()).expect("the CRD serializes");
    assert_eq!(read, expected, "the YAML serializer changed the CRD");
}
