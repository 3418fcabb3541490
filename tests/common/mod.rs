//! The end-to-end harness the operator tests share: the shared control plane with the
//! CRD installed, and per test a namespace, an emulator seeded with the API document's
//! zone and an operator process watching only that namespace.
// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use edgeone_cert_operator::api::{EdgeOneCertificateBinding, EdgeOneCertificateBindingStatus};
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};
use teo_emulator::{CallRecord, Emulator, Seed, State};

pub const SECRET_ID: &str = "AKIDdemo0000000000000000000000000000";
pub const SECRET_KEY: &str = "demo-secret-key-not-a-real-credential";
pub const ZONE: &str = "zone-2fgd17m17xw";
pub const WAIT: Duration = Duration::from_secs(60);
pub const POLL: Duration = Duration::from_millis(200);
pub const QUIET: Duration = Duration::from_secs(3);

/// Applies the CRD from `crds/` to the shared control plane once per test binary.
pub fn install_crd() -> &'static testbed::ControlPlane {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let cp = testbed::shared();
    INSTALLED.get_or_init(|| apply_crd(cp));
    cp
}

/// Applies the CRD from `crds/` to `cp` and waits until it is Established.
pub fn apply_crd(cp: &testbed::ControlPlane) {
    let crd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/edgeone.operators.dev_edgeonecertificatebindings.yaml"
    );
    kubectl_ok(cp, &["apply", "-f", crd]);
    kubectl_ok(
        cp,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/edgeonecertificatebindings.edgeone.operators.dev",
        ],
    );
}

/// Runs kubectl against `cp`; panics with its stderr unless it succeeds.
fn kubectl_ok(cp: &testbed::ControlPlane, args: &[&str]) {
    let out = cp.kubectl().args(args).output().expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies cert-manager's CRDs (from its Go module at the release pinned in
/// tests/certmanager/crds.sh) once per test binary, before any operator starts.
pub fn install_cert_manager_crds() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let cp = install_crd();
    INSTALLED.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/certmanager/crds.sh");
        let out = Command::new(script)
            .output()
            .expect("run tests/certmanager/crds.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let crd = format!("{dir}/cert-manager.io_certificates.yaml");
        kubectl_ok(cp, &["apply", "--server-side", "-f", &crd]);
        kubectl_ok(
            cp,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/certificates.cert-manager.io",
            ],
        );
    });
}

/// An operator process, killed when dropped.
pub struct Operator {
    pub child: Child,
    pub log: std::path::PathBuf,
    /// Where it serves /healthz, /readyz and /metrics.
    pub health_addr: String,
}

impl Operator {
    /// SIGKILL, as a node failure or the OOM killer does it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How to start (and restart) an operator process.
#[derive(Clone)]
struct Launch {
    kubeconfig: std::path::PathBuf,
    namespace: String,
    url: String,
    extra_args: Vec<String>,
}

/// Starts an operator process watching `namespace`, talking to the emulator at `url`
/// with the demo account's credentials, logging to a file named after both.
fn start_operator(namespace: &str, url: &str, name: &str, extra_args: &[&str]) -> Operator {
    let cp = install_crd();
    spawn_operator(
        &Launch {
            kubeconfig: cp.kubeconfig_path(),
            namespace: namespace.to_owned(),
            url: url.to_owned(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        },
        name,
    )
}

fn spawn_operator(launch: &Launch, name: &str) -> Operator {
    let Launch {
        kubeconfig,
        namespace,
        url,
        extra_args,
    } = launch;
    // A free port for /healthz, /readyz and /metrics (picked, then released).
    let health_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgeone-cert-operator"));
    command
        .args([
            "run",
            "--watch-namespace",
            namespace,
            "--deploy-poll",
            "300ms",
            "--health-addr",
            &health_addr,
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--teo-endpoint",
            url,
            "--ssl-endpoint",
            url,
            "--sts-endpoint",
            url,
        ])
        .args(extra_args)
        // A test may ask for another level (clap takes each flag once).
        .args(
            (!extra_args.iter().any(|a| a == "--log-level"))
                .then_some(["--log-level", "info,edgeone_cert_operator=debug"])
                .into_iter()
                .flatten(),
        )
        .env("TENCENTCLOUD_SECRET_ID", SECRET_ID)
        .env("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
        .env_remove("TENCENTCLOUD_SESSION_TOKEN")
        .env_remove("POD_NAME")
        .stdin(Stdio::null());
    // The operator's log goes to a file, named in every failure message.
    let log = std::env::temp_dir().join(format!("edgeone-cert-operator-{namespace}{name}.log"));
    let file = std::fs::File::create(&log).expect("operator log file");
    command
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file);
    let child = testbed::process::spawn_bound_to_us(command).expect("start the operator");
    Operator {
        child,
        log,
        health_addr,
    }
}

/// The API document's zone, with a short deployment delay.
pub fn demo_state() -> State {
    let seed: Seed =
        serde_json::from_str(include_str!("../../emulator/seeds/demo.json")).expect("seed");
    let mut state = State::from_seed(&seed).expect("state");
    state.settings.deploy_delay_ms = 300;
    state
}

/// One test's world: a namespace, an emulator seeded with the API document's zone,
/// and an operator process for that namespace.
pub struct World {
    pub client: Client,
    pub namespace: String,
    pub emulator: Emulator,
    pub log: std::path::PathBuf,
    /// Where the operator serves /healthz, /readyz and /metrics.
    pub health_addr: String,
    pub operator: Operator,
    launch: Launch,
    restarts: usize,
}

impl World {
    pub async fn new(prefix: &str, extra_args: &[&str]) -> World {
        World::start(install_crd(), prefix, demo_state(), extra_args).await
    }

    /// A world on `cp` (whose CRD is installed) with the emulator in `state`.
    pub async fn start(
        cp: &testbed::ControlPlane,
        prefix: &str,
        state: State,
        extra_args: &[&str],
    ) -> World {
        let client = cp.kube_client().await.expect("kube client");
        let namespace = testbed::fresh_namespace(&client, prefix)
            .await
            .expect("namespace");
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), state)
            .await
            .expect("emulator");
        let launch = Launch {
            kubeconfig: cp.kubeconfig_path(),
            namespace: namespace.clone(),
            url: emulator.url(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        let operator = spawn_operator(&launch, "");
        World {
            client,
            namespace,
            log: operator.log.clone(),
            health_addr: operator.health_addr.clone(),
            emulator,
            operator,
            launch,
            restarts: 0,
        }
    }

    /// Starts a new operator process in place of the current one (which must have
    /// exited or been killed), with the same flags and a log of its own.
    pub fn restart_operator(&mut self) {
        self.operator.kill();
        self.restarts += 1;
        self.operator = spawn_operator(&self.launch, &format!("-restart{}", self.restarts));
        self.log = self.operator.log.clone();
        self.health_addr = self.operator.health_addr.clone();
    }

    /// Another operator process for this world's namespace and emulator; `name` tells
    /// its log file apart.
    pub fn another_operator(&self, name: &str, extra_args: &[&str]) -> Operator {
        start_operator(&self.namespace, &self.emulator.url(), name, extra_args)
    }

    /// The operator's /metrics text.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.health_addr);
        reqwest::get(&url)
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn bindings(&self) -> Api<EdgeOneCertificateBinding> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub async fn create(&self, name: &str, spec: Value) -> EdgeOneCertificateBinding {
        self.bindings()
            .create(&PostParams::default(), &binding(name, spec))
            .await
            .expect("create binding")
    }

    /// Creates the Secret, or replaces the existing one of that name in a single update
    /// (data and annotations together, as cert-manager does on renewal).
    pub async fn put_secret(&self, mut secret: Secret) {
        let name = secret.metadata.name.clone().expect("secret name");
        match self.secrets().get_opt(&name).await.expect("get secret") {
            None => {
                self.secrets()
                    .create(&PostParams::default(), &secret)
                    .await
                    .expect("create secret");
            }
            Some(existing) => {
                secret.metadata.resource_version = existing.metadata.resource_version;
                self.secrets()
                    .replace(&name, &PostParams::default(), &secret)
                    .await
                    .expect("replace secret");
            }
        }
    }

    /// Polls the binding until `done` holds for its status, or fails after a minute
    /// with the last status seen.
    pub async fn wait_status(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&EdgeOneCertificateBindingStatus) -> bool,
    ) -> EdgeOneCertificateBindingStatus {
        let start = Instant::now();
        loop {
            let status = self
                .bindings()
                .get(name)
                .await
                .expect("get binding")
                .status
                .unwrap_or_default();
            if done(&status) {
                return status;
            }
            assert!(
                start.elapsed() < WAIT,
                "{name}: timed out waiting for {what}; operator log: {}; last status: {status:#?}; calls: {:#?}",
                self.log.display(),
                self.emulator.calls()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_ready(&self, name: &str) -> EdgeOneCertificateBindingStatus {
        self.wait_status(name, "Ready", |s| condition(s, "Ready") == Some("True"))
            .await
    }

    /// Waits until the binding is Ready=False with `reason`, and returns that condition.
    pub async fn wait_not_ready(&self, name: &str, reason: &str) -> Condition {
        let status = self
            .wait_status(name, &format!("Ready=False with reason {reason}"), |s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == reason)
            })
            .await;
        status
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready condition")
    }

    /// Polls the emulator until `done` holds for its state.
    pub async fn wait_emulator(&self, what: &str, done: impl Fn(&mut State) -> bool) {
        let start = Instant::now();
        while !self.emulator.with_state(&done) {
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for {what}; operator log: {}; calls: {:#?}",
                self.log.display(),
                self.emulator.calls()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub fn calls(&self, action: &str) -> Vec<CallRecord> {
        self.emulator
            .calls()
            .into_iter()
            .filter(|c| c.action == action)
            .collect()
    }

    /// The successful `ModifyHostsCertificate` calls that touched `host`.
    pub fn modifies_of(&self, host: &str) -> Vec<CallRecord> {
        self.calls("ModifyHostsCertificate")
            .into_iter()
            .filter(|c| {
                c.request["Hosts"]
                    .as_array()
                    .is_some_and(|hosts| hosts.iter().any(|h| h == host))
            })
            .collect()
    }

    pub fn host_server_cert_ids(&self, host: &str) -> Vec<String> {
        self.emulator.with_state(|s| {
            s.domains[&(ZONE.to_string(), host.to_string())]
                .config
                .server_cert_ids
                .clone()
        })
    }

    /// The ids of the certificates in the emulator with this SHA-256 fingerprint.
    pub fn uploaded_with_fingerprint(&self, fingerprint: &str) -> Vec<String> {
        self.emulator.with_state(|s| {
            s.certificates
                .values()
                .filter(|c| c.fingerprint.as_deref() == Some(fingerprint))
                .map(|c| c.cert_id.clone())
                .collect()
        })
    }

    /// Asserts that within [`QUIET`] no new call of these actions reaches the emulator.
    pub async fn assert_no_new_calls(&self, actions: &[&str], why: &str) {
        let before = self.emulator.calls().len();
        tokio::time::sleep(QUIET).await;
        let new: Vec<CallRecord> = self.emulator.calls()[before..]
            .iter()
            .filter(|c| actions.contains(&c.action.as_str()))
            .cloned()
            .collect();
        assert!(
            new.is_empty(),
            "{why}: unexpected calls {new:#?}; operator log: {}",
            self.log.display()
        );
    }

    pub async fn wait_gone(&self, name: &str) {
        let start = Instant::now();
        while self
            .bindings()
            .get_opt(name)
            .await
            .expect("get binding")
            .is_some()
        {
            assert!(start.elapsed() < WAIT, "{name} was not deleted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn host_mode(&self, host: &str) -> String {
        self.emulator.with_state(|s| {
            s.domains[&(ZONE.to_string(), host.to_string())]
                .config
                .mode
                .clone()
        })
    }

    pub async fn event_reasons(&self) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = events.list(&Default::default()).await.expect("list events");
        list.items.into_iter().filter_map(|e| e.reason).collect()
    }

    pub async fn wait_event(&self, reason: &str) {
        let start = Instant::now();
        loop {
            let reasons = self.event_reasons().await;
            if reasons.iter().any(|r| r == reason) {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "no {reason} event; events: {reasons:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A binding named `name` with this spec (as JSON, so tests can also write what the
/// types would not allow).
pub fn binding(name: &str, spec: Value) -> EdgeOneCertificateBinding {
    serde_json::from_value(json!({
        "apiVersion": "edgeone.operators.dev/v1alpha1",
        "kind": "EdgeOneCertificateBinding",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a binding")
}

pub fn condition<'a>(status: &'a EdgeOneCertificateBindingStatus, type_: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}
