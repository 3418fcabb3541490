//! Finding the pinned kube-apiserver, etcd, kubectl and helm binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};

/// Overrides where the tools are looked up (a directory holding all four binaries).
pub const TOOLS_BIN_ENV: &str = "EDGEONE_TOOLS_BIN";

/// The binaries a control plane and its tests need.
pub const TOOLS: [&str; 4] = ["kube-apiserver", "etcd", "kubectl", "helm"];

/// The repository root: this crate lives in `<root>/tests/support`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory with kube-apiserver, etcd, kubectl and helm: `$EDGEONE_TOOLS_BIN`
/// if set, otherwise whatever `tests/controlplane/build.sh` prints (it builds them
/// on first use, which takes minutes, and answers instantly from its cache after).
/// The answer is computed once per process.
pub fn tools_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| find_tools_bin().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

fn find_tools_bin() -> Result<PathBuf> {
    let bin = match std::env::var_os(TOOLS_BIN_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => run_build_script()?,
    };
    for tool in TOOLS {
        let path = bin.join(tool);
        if !path.is_file() {
            bail!(
                "{} is missing; run tests/controlplane/build.sh or point {TOOLS_BIN_ENV} at a \
                 directory with {}",
                path.display(),
                TOOLS.join(", ")
            );
        }
    }
    bin.canonicalize()
        .with_context(|| format!("resolving {}", bin.display()))
}

fn run_build_script() -> Result<PathBuf> {
    let script = repo_root().join("tests/controlplane/build.sh");
    // stderr passes through so a first, minutes-long build shows its progress.
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}); it needs Go to build kube-apiserver, etcd, kubectl and helm, or \
             set {TOOLS_BIN_ENV} to a directory that has them",
            script.display(),
            output.status
        );
    }
    let stdout = String::from_utf8(output.stdout).context("build.sh printed a non-UTF-8 path")?;
    let dir = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .ok_or_else(|| anyhow!("{} printed no directory", script.display()))?;
    Ok(PathBuf::from(dir.trim()))
}
