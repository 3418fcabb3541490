//! The world one mode runs in: a namespace of the benchmark's control plane, an
//! emulator seeded with the zones, the Secrets and bindings, and the operator process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use edgeone_cert_operator::api::EdgeOneCertificateBinding;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;
use teo_emulator::faults::FaultConfig;
use teo_emulator::{Emulator, Seed, State};

use crate::layout::Layout;
use testbed::issuer::{Ca, Leaf};

pub const SECRET_ID: &str = "AKIDbench00000000000000000000000000000";
pub const SECRET_KEY: &str = "bench-secret-key-not-a-real-credential";
const UIN: &str = "100000000001";

/// The emulator's behaviour: the real limits, added latency and deployment delay.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub teo_rate_limit: u32,
    pub ssl_rate_limit: u32,
    pub latency_ms: u64,
    pub deploy_delay_ms: u64,
}

/// Installs the CRD (from the operator's own types, as `crds/` is generated) and waits
/// until it is served.
pub async fn install_crd(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = edgeone_cert_operator::api::crd();
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.create(&PostParams::default(), &crd)
        .await
        .context("creating the CRD")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let established = crds
            .get(&name)
            .await?
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the CRD {name} was not Established within a minute");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn start_state(layout: &Layout, config: &EmulatorConfig) -> Result<State> {
    let zones: Vec<serde_json::Value> = (0..layout.zones)
        .map(|z| {
            json!({
                "zoneId": layout.zone_id(z),
                "uin": UIN,
                "name": layout.zone_name(z),
                "hosts": layout.zone_hosts(z),
            })
        })
        .collect();
    let seed: Seed = serde_json::from_value(json!({
        "accounts": [{"secretId": SECRET_ID, "secretKey": SECRET_KEY, "uin": UIN}],
        "zones": zones,
        "settings": {
            "deployDelayMs": config.deploy_delay_ms,
            "teoRateLimit": config.teo_rate_limit,
            "sslRateLimit": config.ssl_rate_limit,
        },
    }))
    .context("the emulator seed")?;
    let mut state = State::from_seed(&seed).map_err(anyhow::Error::msg)?;
    state.faults =
        serde_json::from_value::<FaultConfig>(json!({"*": {"latencyMs": config.latency_ms}}))
            .context("the emulator faults")?;
    Ok(state)
}

/// Creates (or, with `replace`, replaces) Secrets `concurrency` at a time.
pub async fn put_secrets(
    api: &Api<Secret>,
    secrets: Vec<Secret>,
    concurrency: usize,
    replace: bool,
) -> Result<()> {
    futures::stream::iter(secrets)
        .map(|secret| async move {
            let name = secret.metadata.name.clone().unwrap_or_default();
            if replace {
                // One update carrying the new data, as cert-manager renews.
                let mut secret = secret;
                secret.metadata.resource_version = api.get(&name).await?.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &secret).await?;
            } else {
                api.create(&PostParams::default(), &secret).await?;
            }
            Ok::<(), kube::Error>(())
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await
        .context("writing Secrets")?;
    Ok(())
}

/// An Opaque Secret of `kib` KiB that no binding reads (a Helm release, say).
pub fn unrelated_secret(index: usize, kib: usize) -> Secret {
    // Cheap, distinct filler; its content does not matter, its size does.
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ index as u64;
    let blob: Vec<u8> = (0..kib * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(format!("unrelated-{index:05}")),
            labels: Some([("owner".to_owned(), "helm".to_owned())].into()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([("release".to_owned(), ByteString(blob))])),
        ..Secret::default()
    }
}

pub fn cert_secrets(layout: &Layout, ca: &Ca, leaves: &[Leaf]) -> Vec<Secret> {
    leaves
        .iter()
        .enumerate()
        .map(|(i, leaf)| ca.secret(&layout.secret_name(i), &layout.secret_names(i), leaf))
        .collect()
}

pub fn issue_leaves(layout: &Layout, ca: &Ca) -> Result<Vec<Leaf>> {
    (0..layout.secrets())
        .map(|i| ca.issue(&layout.secret_names(i)))
        .collect()
}

pub async fn create_bindings(
    api: &Api<EdgeOneCertificateBinding>,
    layout: &Layout,
    concurrency: usize,
) -> Result<()> {
    futures::stream::iter(layout.all_bindings())
        .map(|b| async move {
            let binding: EdgeOneCertificateBinding = serde_json::from_value(json!({
                "apiVersion": "edgeone.operators.dev/v1alpha1",
                "kind": "EdgeOneCertificateBinding",
                "metadata": {"name": b.name},
                "spec": {
                    "zoneId": layout.zone_id(b.zone),
                    "hosts": b.hosts,
                    "mode": "sslcert",
                    "serverCertificates": [{"secretRef": {"name": layout.secret_name(b.secret)}}],
                },
            }))
            .context("binding")?;
            api.create(&PostParams::default(), &binding).await?;
            Ok::<(), anyhow::Error>(())
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await
        .context("creating bindings")?;
    Ok(())
}

/// A cache of the namespace's bindings, kept current by a watch.
pub async fn watch_bindings(
    api: Api<EdgeOneCertificateBinding>,
) -> Result<Store<EdgeOneCertificateBinding>> {
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    store
        .wait_until_ready()
        .await
        .context("the bindings watch")?;
    Ok(store)
}

pub async fn start_emulator(state: State) -> Result<Emulator> {
    Emulator::start("127.0.0.1:0".parse()?, state)
        .await
        .context("starting the emulator")
}

/// The operator process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Operator {
    child: Child,
    pub pid: u32,
    pub health_addr: String,
    pub log: PathBuf,
}

pub struct OperatorLaunch<'a> {
    pub binary: &'a Path,
    pub kubeconfig: &'a Path,
    pub namespace: &'a str,
    pub endpoint: &'a str,
    pub log: PathBuf,
    pub args: Vec<String>,
}

impl Operator {
    pub fn start(launch: OperatorLaunch<'_>) -> Result<Operator> {
        let health_addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("a free port for the operator's /metrics")?
            .to_string();
        let log = std::fs::File::create(&launch.log)
            .with_context(|| format!("creating {}", launch.log.display()))?;
        let mut command = Command::new(launch.binary);
        command
            .arg("run")
            .arg("--kubeconfig")
            .arg(launch.kubeconfig)
            .args(["--watch-namespace", launch.namespace])
            .args(["--teo-endpoint", launch.endpoint])
            .args(["--ssl-endpoint", launch.endpoint])
            .args(["--sts-endpoint", launch.endpoint])
            .args(["--health-addr", &health_addr])
            .args(&launch.args)
            // Only what we set: no EDGEONE_*, KUBECONFIG or credentials from our
            // environment change what is measured.
            .env_clear()
            .env("TENCENTCLOUD_SECRET_ID", SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = testbed::process::spawn_bound_to_us(command).with_context(|| {
            format!(
                "starting {} (build it with `cargo build --release -p edgeone-cert-operator`)",
                launch.binary.display()
            )
        })?;
        Ok(Operator {
            pid: child.id(),
            child,
            health_addr,
            log: launch.log,
        })
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the operator exited ({status}); its log: {}\n{}",
                self.log.display(),
                testbed::process::log_tail(&self.log)
            );
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            testbed::process::signal(self.pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}
