//! A real etcd + kube-apiserver on free loopback ports, the way controller-runtime's
//! envtest runs them: no kubelet, no controller-manager, no scheduler. Objects are
//! stored and validated, watches and admission work, but nothing reconciles
//! built-in kinds (no pods start, deleted namespaces stay Terminating).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::certs::{Pki, write_file};
use crate::kubeconfig;
use crate::process::{ManagedProcess, free_ports};
use crate::tools;

/// Set to `1` to leave the control plane's directory (logs, etcd data) behind.
pub const KEEP_ENV: &str = "TESTBED_KEEP";

/// How long each process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How many times a start is tried when a port picked as free was taken meanwhile.
const START_ATTEMPTS: u32 = 3;

/// What the service-account tokens claim as issuer: the in-cluster name, as a real
/// cluster would, so tokens look like production ones.
const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// How to start a [`ControlPlane`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the state lives. `None`: a fresh temporary directory, removed on
    /// teardown. `Some`: that directory (created if needed); teardown removes only
    /// what the control plane put there and keeps `logs/`.
    pub dir: Option<PathBuf>,
    /// Where kube-apiserver and etcd are; `None` means [`tools::tools_bin`].
    pub tools_bin: Option<PathBuf>,
    /// How long etcd plus kube-apiserver may take to become ready, per attempt.
    pub startup_timeout: Duration,
    /// Leave everything on disk at teardown. Defaults to `$TESTBED_KEEP == "1"`.
    pub keep: bool,
    /// Appended to kube-apiserver's flags (a later flag wins over ours).
    pub extra_apiserver_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dir: None,
            tools_bin: None,
            startup_timeout: Duration::from_secs(60),
            keep: std::env::var(KEEP_ENV).is_ok_and(|v| v == "1"),
            extra_apiserver_args: Vec::new(),
        }
    }
}

/// The process ids of a running control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pids {
    pub etcd: u32,
    pub apiserver: u32,
}

impl Pids {
    /// The contents of the `pids` file: one `name pid` line per process.
    pub fn to_file_text(self) -> String {
        format!("etcd {}\nkube-apiserver {}\n", self.etcd, self.apiserver)
    }

    /// Parses what [`Pids::to_file_text`] wrote.
    pub fn parse(text: &str) -> Result<Pids> {
        let find = |name: &str| -> Result<u32> {
            text.lines()
                .filter_map(|line| line.split_once(' '))
                .find(|(n, _)| *n == name)
                .ok_or_else(|| anyhow!("no {name} line in the pids file"))?
                .1
                .trim()
                .parse()
                .with_context(|| format!("the {name} pid is not a number"))
        };
        Ok(Pids {
            etcd: find("etcd")?,
            apiserver: find("kube-apiserver")?,
        })
    }
}

/// The files and directories of one control plane under its directory.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn certs(&self) -> PathBuf {
        self.root.join("certs")
    }
    fn etcd_data(&self) -> PathBuf {
        self.root.join("etcd-data")
    }
    fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    fn helm(&self) -> PathBuf {
        self.root.join("helm")
    }
    fn kubectl_cache(&self) -> PathBuf {
        self.root.join("kubectl-cache")
    }
    fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }
    fn pids(&self) -> PathBuf {
        self.root.join("pids")
    }
    /// Removes the whole directory if it is ours, or else what we put into it.
    fn remove_state(&self, dir_is_temporary: bool) {
        if dir_is_temporary {
            let _ = fs::remove_dir_all(&self.root);
            return;
        }
        for path in self.removable() {
            // Errors mean it was never created, or someone removed it already.
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }

    /// What teardown removes from a directory the caller chose: all we create there
    /// except the logs, which are what one reads after something went wrong.
    fn removable(&self) -> [PathBuf; 6] {
        [
            self.certs(),
            self.etcd_data(),
            self.helm(),
            self.kubectl_cache(),
            self.kubeconfig(),
            self.pids(),
        ]
    }
}

/// A running etcd + kube-apiserver. Dropping it stops both and cleans up.
pub struct ControlPlane {
    layout: Layout,
    dir_is_temporary: bool,
    keep: bool,
    tools_bin: PathBuf,
    server_url: String,
    etcd_url: String,
    kubeconfig_yaml: String,
    pids: Pids,
    apiserver_args: Vec<String>,
    /// Restarts so far, to give each run of kube-apiserver its own log.
    apiserver_restarts: std::sync::atomic::AtomicUsize,
    /// kube-apiserver first, then etcd: the order they are stopped in, so the
    /// apiserver never loses its storage while still serving.
    processes: Mutex<Vec<ManagedProcess>>,
    cleaned_up: AtomicBool,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver and returns once `/readyz` answers 200 to the
    /// admin. Blocks the calling thread (a few seconds); fine inside async tests too,
    /// as it runs its own readiness checks on a helper thread.
    pub fn start(options: Options) -> Result<ControlPlane> {
        let tools_bin = match &options.tools_bin {
            Some(bin) => bin.clone(),
            None => tools::tools_bin()?,
        };
        let (root, dir_is_temporary) = match &options.dir {
            Some(dir) => {
                fs::create_dir_all(dir)
                    .with_context(|| format!("creating the directory {}", dir.display()))?;
                let dir = dir
                    .canonicalize()
                    .with_context(|| format!("resolving {}", dir.display()))?;
                (dir, false)
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("testbed-")
                    .tempdir()
                    .context("creating a temporary directory for the control plane")?
                    .keep();
                (dir, true)
            }
        };
        let layout = Layout { root };
        let started = start_in(&layout, &tools_bin, &options);
        match started {
            Ok(running) => Ok(ControlPlane {
                layout,
                dir_is_temporary,
                keep: options.keep,
                tools_bin,
                server_url: running.endpoints.server_url,
                etcd_url: running.endpoints.etcd_url,
                kubeconfig_yaml: running.endpoints.kubeconfig_yaml,
                pids: running.pids,
                apiserver_args: running.endpoints.apiserver_args,
                apiserver_restarts: Default::default(),
                processes: Mutex::new(running.processes),
                cleaned_up: AtomicBool::new(false),
            }),
            Err(error) => {
                if !options.keep {
                    layout.remove_state(dir_is_temporary);
                }
                Err(error)
            }
        }
    }

    /// The control plane's directory (kubeconfig, certs, etcd data, logs).
    pub fn dir(&self) -> &Path {
        &self.layout.root
    }

    /// The admin kubeconfig, with certificates embedded.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.layout.kubeconfig()
    }

    /// The kubeconfig's text, e.g. to store in a Secret for an in-cluster consumer.
    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// `http://127.0.0.1:<port>`, for tests that want to look at storage directly.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// The directory holding kube-apiserver, etcd, kubectl and helm.
    pub fn tools_bin(&self) -> &Path {
        &self.tools_bin
    }

    pub fn pids(&self) -> Pids {
        self.pids
    }

    /// A new admin client. Each call makes a new one, bound to the calling Tokio
    /// runtime: every `#[tokio::test]` has its own runtime, and a client must not
    /// outlive the runtime it was made on.
    pub async fn kube_client(&self) -> Result<kube::Client> {
        kubeconfig::client_from(&self.kubeconfig_yaml).await
    }

    /// The pinned kubectl, pointed at this control plane; add arguments and run.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.tools_bin.join("kubectl"));
        command
            .arg("--kubeconfig")
            .arg(self.layout.kubeconfig())
            // Keep the discovery cache out of the user's ~/.kube.
            .env("KUBECACHEDIR", self.layout.kubectl_cache());
        command
    }

    /// The pinned helm, pointed at this control plane, with its cache, config and
    /// data (repositories, plugins) in the control plane's directory, not in $HOME.
    pub fn helm(&self) -> Command {
        let helm = self.layout.helm();
        let mut command = Command::new(self.tools_bin.join("helm"));
        command
            .env("KUBECONFIG", self.layout.kubeconfig())
            .env("HELM_CACHE_HOME", helm.join("cache"))
            .env("HELM_CONFIG_HOME", helm.join("config"))
            .env("HELM_DATA_HOME", helm.join("data"));
        command
    }

    /// Ok while both processes run; otherwise which one exited, how, and its log.
    pub fn check_alive(&self) -> Result<()> {
        let mut processes = lock(&self.processes);
        for process in processes.iter_mut() {
            if let Some(status) = process.exited() {
                bail!(
                    "{} exited unexpectedly ({status})\n{}",
                    process.name(),
                    process.log_tail()
                );
            }
        }
        Ok(())
    }

    /// Stops kube-apiserver (SIGTERM, as a rolling upgrade of the control plane
    /// does), leaves it down for `down`, and starts it again on the same port with the
    /// same etcd, returning once `/readyz` answers. Clients see refused connections
    /// and broken watches meanwhile; nothing stored is lost. [`ControlPlane::pids`]
    /// keeps the first process's id: use this on private control planes only, never
    /// on the shared one other tests use.
    pub fn restart_apiserver(&self, down: Duration) -> Result<()> {
        let mut processes = lock(&self.processes);
        let Some(apiserver) = processes.first_mut() else {
            bail!("the control plane was shut down");
        };
        apiserver.terminate(STOP_GRACE);
        thread::sleep(down);
        let run = self.apiserver_restarts.fetch_add(1, Ordering::SeqCst) + 1;
        let log = self
            .layout
            .logs()
            .join(format!("kube-apiserver-restart-{run}.log"));
        *apiserver = ManagedProcess::start(
            "kube-apiserver",
            &self.tools_bin.join("kube-apiserver"),
            &self.apiserver_args,
            &log,
        )?;
        wait_for_apiserver(
            apiserver,
            &self.kubeconfig_yaml,
            Instant::now() + Duration::from_secs(60),
        )
    }

    /// Stops the processes and removes the files (see [`Options::dir`] and
    /// [`Options::keep`]). Idempotent; also what `Drop` does. Takes `&self` so that
    /// a control plane in a `static` can be torn down at exit.
    pub fn shutdown(&self) {
        let processes = std::mem::take(&mut *lock(&self.processes));
        for mut process in processes {
            process.terminate(STOP_GRACE);
        }
        if self.cleaned_up.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.keep {
            eprintln!(
                "testbed: kept {} ({KEEP_ENV}=1)",
                self.layout.root.display()
            );
            return;
        }
        self.layout.remove_state(self.dir_is_temporary);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A lock that still works after a panic elsewhere: teardown must happen anyway.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a freshly launched control plane answers.
struct Endpoints {
    server_url: String,
    etcd_url: String,
    kubeconfig_yaml: String,
    /// What kube-apiserver was started with, to start it again the same way.
    apiserver_args: Vec<String>,
}

struct Running {
    endpoints: Endpoints,
    pids: Pids,
    processes: Vec<ManagedProcess>,
}

/// A failed start, and whether it failed because a chosen port was taken.
struct Failure {
    error: anyhow::Error,
    port_race: bool,
}

fn start_in(layout: &Layout, tools_bin: &Path, options: &Options) -> Result<Running> {
    // Stale state from an earlier run in the same directory would confuse a reader
    // (or `testbed up --detach`, which waits for the kubeconfig to appear).
    layout.remove_state(false);
    fs::create_dir_all(layout.logs())
        .with_context(|| format!("creating {}", layout.logs().display()))?;
    let pki = Pki::generate(&layout.certs())?;

    let mut attempt = 1;
    loop {
        match launch(layout, tools_bin, &pki, options) {
            Ok(running) => return Ok(running),
            Err(failure) if failure.port_race && attempt < START_ATTEMPTS => attempt += 1,
            Err(failure) => return Err(failure.error),
        }
    }
}

/// One attempt: fresh ports, fresh etcd data, both processes up and ready.
fn launch(
    layout: &Layout,
    tools_bin: &Path,
    pki: &Pki,
    options: &Options,
) -> Result<Running, Failure> {
    let deadline = Instant::now() + options.startup_timeout;
    let mut processes: Vec<ManagedProcess> = Vec::new();
    let result = launch_processes(layout, tools_bin, pki, options, deadline, &mut processes);
    match result {
        Ok(endpoints) => {
            // launch_processes leaves them in teardown order: apiserver, then etcd.
            let pids = Pids {
                apiserver: processes[0].pid(),
                etcd: processes[1].pid(),
            };
            let written = write_file(&layout.pids(), &pids.to_file_text()).and_then(|()| {
                // Written last and atomically: its existence means "ready".
                let tmp = layout.root.join(".kubeconfig.tmp");
                write_file(&tmp, &endpoints.kubeconfig_yaml)?;
                fs::rename(&tmp, layout.kubeconfig())
                    .with_context(|| format!("writing {}", layout.kubeconfig().display()))
            });
            if let Err(error) = written {
                stop_all(&mut processes);
                return Err(Failure {
                    error,
                    port_race: false,
                });
            }
            Ok(Running {
                endpoints,
                pids,
                processes,
            })
        }
        Err(error) => {
            stop_all(&mut processes);
            let port_race = processes.iter().any(|p| {
                fs::read_to_string(p.log_path())
                    .is_ok_and(|log| log.contains("address already in use"))
            });
            Err(Failure { error, port_race })
        }
    }
}

fn stop_all(processes: &mut [ManagedProcess]) {
    for process in processes.iter_mut() {
        process.terminate(STOP_GRACE);
    }
}

/// Starts etcd, then kube-apiserver, pushing each into `processes` (apiserver
/// first) as soon as it runs so the caller can stop them on any error.
fn launch_processes(
    layout: &Layout,
    tools_bin: &Path,
    pki: &Pki,
    options: &Options,
    deadline: Instant,
    processes: &mut Vec<ManagedProcess>,
) -> Result<Endpoints> {
    let ports = free_ports(3)?;
    let (etcd_client_port, etcd_peer_port, apiserver_port) = (ports[0], ports[1], ports[2]);
    let etcd_url = format!("http://127.0.0.1:{etcd_client_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
    let server_url = format!("https://127.0.0.1:{apiserver_port}");

    let data_dir = layout.etcd_data();
    let _ = fs::remove_dir_all(&data_dir);
    let etcd_args = vec![
        "--name=testbed".to_string(),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=testbed={peer_url}"),
        // Test data is thrown away anyway; fsync would only make every write slow.
        "--unsafe-no-fsync=true".to_string(),
    ];
    let etcd = ManagedProcess::start(
        "etcd",
        &tools_bin.join("etcd"),
        &etcd_args,
        &layout.logs().join("etcd.log"),
    )?;
    processes.insert(0, etcd);
    wait_for_etcd(&mut processes[0], etcd_client_port, deadline)?;

    let files = &pki.files;
    let path = |p: &Path| p.display().to_string();
    let mut apiserver_args = vec![
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".to_string(),
        "--advertise-address=127.0.0.1".to_string(),
        format!("--secure-port={apiserver_port}"),
        format!("--cert-dir={}", path(&layout.certs())),
        format!("--tls-cert-file={}", path(&files.serving_cert)),
        format!("--tls-private-key-file={}", path(&files.serving_key)),
        format!("--client-ca-file={}", path(&files.ca_cert)),
        format!(
            "--service-account-key-file={}",
            path(&files.service_account_public_key)
        ),
        format!(
            "--service-account-signing-key-file={}",
            path(&files.service_account_private_key)
        ),
        format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"),
        "--authorization-mode=RBAC".to_string(),
        "--service-cluster-ip-range=10.0.0.0/24".to_string(),
        "--allow-privileged=true".to_string(),
        // This admission plugin rejects pods until the controller-manager has made
        // the namespace's default service account, and no controller-manager runs.
        "--disable-admission-plugins=ServiceAccount".to_string(),
    ];
    apiserver_args.extend(options.extra_apiserver_args.iter().cloned());
    let apiserver = ManagedProcess::start(
        "kube-apiserver",
        &tools_bin.join("kube-apiserver"),
        &apiserver_args,
        &layout.logs().join("kube-apiserver.log"),
    )?;
    processes.insert(0, apiserver);

    let kubeconfig_yaml = kubeconfig::render(&server_url, pki);
    wait_for_apiserver(&mut processes[0], &kubeconfig_yaml, deadline)?;
    Ok(Endpoints {
        server_url,
        etcd_url,
        kubeconfig_yaml,
        apiserver_args,
    })
}

/// Polls etcd's `/health` until it says healthy, so the apiserver finds its storage
/// at once instead of backing off.
fn wait_for_etcd(etcd: &mut ManagedProcess, port: u16, deadline: Instant) -> Result<()> {
    loop {
        if let Some(status) = etcd.exited() {
            bail!(
                "etcd exited during start-up ({status})\n{}",
                etcd.log_tail()
            );
        }
        if etcd_healthy(port) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "etcd was not healthy on 127.0.0.1:{port} in time\n{}",
                etcd.log_tail()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// One `GET /health` over plain HTTP/1.0: too small a job to need an HTTP client.
fn etcd_healthy(port: u16) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status_ok =
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200");
        Ok(status_ok && response.contains(r#""health":"true""#))
    };
    attempt().unwrap_or(false)
}

/// Polls `GET /readyz` as the admin until it answers 200. Runs on a helper thread
/// with its own Tokio runtime, so it works whether or not the caller is async.
fn wait_for_apiserver(
    apiserver: &mut ManagedProcess,
    kubeconfig_yaml: &str,
    deadline: Instant,
) -> Result<()> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting a Tokio runtime for the readiness check")?;
                runtime.block_on(poll_readyz(apiserver, kubeconfig_yaml, deadline))
            })
            .join()
            .map_err(|_| anyhow!("the readiness check panicked"))?
    })
}

async fn poll_readyz(
    apiserver: &mut ManagedProcess,
    kubeconfig_yaml: &str,
    deadline: Instant,
) -> Result<()> {
    let client = kubeconfig::client_from(kubeconfig_yaml).await?;
    loop {
        if let Some(status) = apiserver.exited() {
            bail!(
                "kube-apiserver exited during start-up ({status})\n{}",
                apiserver.log_tail()
            );
        }
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .context("building the /readyz request")?;
        let answer = tokio::time::timeout(Duration::from_secs(5), client.request_text(request));
        let last_error = match answer.await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(_) => "timed out".to_string(),
        };
        if Instant::now() >= deadline {
            bail!(
                "kube-apiserver was not ready in time (last /readyz: {last_error})\n{}",
                apiserver.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
