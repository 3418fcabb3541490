//! One control plane per test binary, shared by all its tests, each of which works
//! in its own namespace.

use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::controlplane::{ControlPlane, Options};

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The test binary's control plane, started by the first caller (the others wait).
/// Torn down at process exit by an `atexit` handler, since statics are never
/// dropped; if the binary is killed instead, the processes still die with it
/// (PDEATHSIG) and only the temporary directory is left behind.
///
/// Panics if it cannot start: that is the test's set-up failing, and every test
/// that calls it then fails with the same message instead of retrying.
pub fn shared() -> &'static ControlPlane {
    match try_shared() {
        Ok(control_plane) => control_plane,
        Err(error) => panic!("testbed: the shared control plane did not start: {error:#}"),
    }
}

/// [`shared`] without the panic.
pub fn try_shared() -> Result<&'static ControlPlane> {
    SHARED
        .get_or_init(|| {
            let started = ControlPlane::start(Options::default()).map_err(|e| format!("{e:#}"));
            if started.is_ok() {
                // SAFETY: registers a plain `extern "C"` function with no arguments.
                let registered = unsafe { libc::atexit(shut_down_shared) };
                if registered != 0 {
                    eprintln!(
                        "testbed: could not register the exit handler; the control plane's \
                         temporary directory will be left behind"
                    );
                }
            }
            started
        })
        .as_ref()
        .map_err(|error| anyhow!("{error}"))
}

extern "C" fn shut_down_shared() {
    // Unwinding out of an `extern "C"` function aborts; a failed teardown must not.
    let _ = std::panic::catch_unwind(|| {
        if let Some(Ok(control_plane)) = SHARED.get() {
            control_plane.shutdown();
        }
    });
}

/// Creates a namespace named `<prefix>-<random suffix>` and returns its name, so
/// tests sharing a control plane don't see each other's objects. Namespaces are not
/// deleted afterwards: without a controller-manager they would stay Terminating,
/// and the whole control plane goes away at the end anyway.
pub async fn fresh_namespace(client: &kube::Client, prefix: &str) -> Result<String> {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(6)
        .map(|c| char::from(c).to_ascii_lowercase())
        .collect();
    // A namespace name is a DNS label: at most 63 characters.
    let prefix: String = prefix.chars().take(63 - 1 - suffix.len()).collect();
    let name = format!("{prefix}-{suffix}");
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating the namespace {name}"))?;
    Ok(name)
}
