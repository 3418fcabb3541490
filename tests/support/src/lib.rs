//! A real etcd + kube-apiserver for the end-to-end tests and the local demo.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let control_plane = testbed::shared();
//! let client = control_plane.kube_client().await?;
//! let namespace = testbed::fresh_namespace(&client, "my-test").await?;
//! let status = control_plane.kubectl().args(["get", "ns", &namespace]).status()?;
//! assert!(status.success());
//! # Ok(())
//! # }
//! ```
//!
//! The binaries come from `tests/controlplane/build.sh` (or `$EDGEONE_TOOLS_BIN`).
//! Child processes die with the process that started them, even on SIGKILL.

mod certs;
mod controlplane;
pub mod issuer;
mod kubeconfig;
pub mod process;
mod shared;
mod tools;

pub use controlplane::{ControlPlane, KEEP_ENV, Options, Pids};
pub use shared::{fresh_namespace, shared, try_shared};
pub use tools::{TOOLS, TOOLS_BIN_ENV, repo_root, tools_bin};
