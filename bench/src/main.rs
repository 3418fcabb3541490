//! `edgeone-bench` (`make bench`): the scale benchmark of issue 6. On a real
//! kube-apiserver + etcd and the Tencent Cloud API emulator with the real rate limits,
//! it measures a cold start, a renewal wave and a steady state, first with the
//! operator's defaults (coalesced calls, shared observation), then in a per-host
//! baseline mode, and prints a markdown table (stdout) and writes JSON. Benchmarks
//! measure: the exit code is 0 whatever the figures, non-zero only when the benchmark
//! itself could not run.

mod layout;
mod measure;
mod report;
mod world;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use edgeone_cert_operator::api::{
    DEPLOYED, EdgeOneCertificateBinding, EdgeOneCertificateBindingStatus, READY, is_true,
};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use serde_json::json;
use teo_emulator::Emulator;

use crate::layout::Layout;
use crate::measure::OperatorMetrics;
use crate::report::{LowerBound, ModeResult, Phase, Ratios, Report};
use crate::world::{EmulatorConfig, Operator, OperatorLaunch};
use testbed::issuer::{Ca, Leaf};

/// The per-host baseline: no coalescing, one host per call, no shared observation.
const BASELINE_ARGS: [&str; 6] = [
    "--coalesce-window",
    "0",
    "--max-hosts-per-call",
    "1",
    "--shared-observation",
    "false",
];

#[derive(Debug, Parser)]
#[command(
    name = "edgeone-bench",
    about = "Cold start, renewal wave and steady state of edgeone-cert-operator against the emulator with the real API limits, coalesced and per-host"
)]
struct Args {
    /// Bindings (2 hosts each).
    #[arg(long, default_value_t = 1000)]
    bindings: usize,
    /// Zones the bindings are spread over (in contiguous blocks).
    #[arg(long, default_value_t = 20)]
    zones: usize,
    /// Bindings per cert-manager style Secret.
    #[arg(long, default_value_t = 10)]
    bindings_per_secret: usize,
    /// Acceleration domains seeded per zone (at least what the bindings use).
    #[arg(long, default_value_t = 100)]
    hosts_per_zone: usize,
    /// Opaque Secrets no binding reads, created before the operator starts.
    #[arg(long, default_value_t = 2000)]
    unrelated_secrets: usize,
    /// Size of each unrelated Secret, KiB.
    #[arg(long, default_value_t = 64)]
    unrelated_secret_kib: usize,
    /// The steady-state window.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    idle: Duration,
    /// The operator's --drift-interval.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drift_interval: Duration,
    /// Latency the emulator adds to every call, ms.
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    /// The emulator's deployment delay, ms.
    #[arg(long, default_value_t = 2000)]
    deploy_delay_ms: u64,
    /// The emulator's teo limit, requests/s per account and action.
    #[arg(long, default_value_t = 20)]
    teo_rate_limit: u32,
    /// The emulator's ssl limit, requests/s per account and action.
    #[arg(long, default_value_t = 10)]
    ssl_rate_limit: u32,
    /// Run the coalesced mode only.
    #[arg(long)]
    skip_baseline: bool,
    /// The operator binary (a release build).
    #[arg(long, default_value = "target/release/edgeone-cert-operator")]
    operator: PathBuf,
    /// Extra operator flag (repeatable), for both modes, e.g. --operator-arg=--deploy-poll=1s.
    #[arg(long = "operator-arg", allow_hyphen_values = true)]
    operator_args: Vec<String>,
    /// The operator's --log-level.
    #[arg(long, default_value = "info")]
    operator_log_level: String,
    /// Where the JSON results go; the operator logs go to `logs/` beside it.
    #[arg(long, default_value = "target/bench/results.json")]
    output: PathBuf,
    /// Longest wait for a cold start or renewal to converge.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    phase_timeout: Duration,
    /// Pause between phases (its calls are counted in no phase).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Concurrent Kubernetes writes while setting up.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("edgeone-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Progress on stderr, stamped with the time since the benchmark started.
fn progress(started: Instant, message: impl std::fmt::Display) {
    eprintln!("[{:7.1}s] {message}", started.elapsed().as_secs_f64());
}

fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cpus": cpus,
        "cpuModel": model,
        "memoryGiB": (memory_gib * 10.0).round() / 10.0,
        "loadAverageAtStart": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "description": format!("{cpus} cores ({model}), {memory_gib:.0} GiB"),
    })
}

async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    if !args.operator.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release --locked -p edgeone-cert-operator` (make bench does)",
            args.operator.display()
        );
    }
    if args.bindings == 0 {
        bail!("--bindings must be at least 1");
    }
    let operator = args.operator.canonicalize()?;
    let out_dir = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let log_dir = out_dir.join("logs");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let machine = machine();

    progress(
        started,
        "starting etcd + kube-apiserver (tests/controlplane/build.sh builds them on first use)",
    );
    let control_plane =
        tokio::task::spawn_blocking(|| testbed::ControlPlane::start(testbed::Options::default()))
            .await??;
    let client = control_plane.kube_client().await?;
    world::install_crd(&client).await?;

    let layout = Layout::new(
        args.bindings,
        args.zones,
        args.bindings_per_secret,
        args.hosts_per_zone,
    );
    let bound = LowerBound {
        uploads: layout.secrets(),
        ssl_rate_per_second: args.ssl_rate_limit,
        groups: layout.groups(),
        teo_rate_per_second: args.teo_rate_limit,
        deploy_delay_seconds: args.deploy_delay_ms as f64 / 1000.0,
        seconds: layout.secrets() as f64 / f64::from(args.ssl_rate_limit.max(1))
            + layout.groups() as f64 / f64::from(args.teo_rate_limit.max(1))
            + args.deploy_delay_ms as f64 / 1000.0,
    };
    let ca = Ca::new()?;
    let bench = Bench {
        args: &args,
        started,
        layout: &layout,
        ca: &ca,
        client,
        kubeconfig: control_plane.kubeconfig_path(),
        operator,
        log_dir,
        bound: &bound,
    };

    let coalesced = bench.run_mode("coalesced", &[]).await?;
    let baseline = if args.skip_baseline {
        None
    } else {
        Some(bench.run_mode("baseline", &BASELINE_ARGS).await?)
    };
    let ratios = baseline.as_ref().map(|b| Ratios::new(&coalesced, b));
    let targets = report::targets(&coalesced, baseline.as_ref(), &bound);
    let report = Report {
        config: json!({
            "bindings": args.bindings,
            "zones": layout.zones,
            "hostsPerZone": layout.hosts_per_zone,
            "bindingsPerSecret": layout.per_secret,
            "secrets": layout.secrets(),
            "unrelatedSecrets": args.unrelated_secrets,
            "unrelatedSecretKib": args.unrelated_secret_kib,
            "idleSeconds": args.idle.as_secs_f64(),
            "driftInterval": humantime::format_duration(args.drift_interval).to_string(),
            "latencyMs": args.latency_ms,
            "deployDelayMs": args.deploy_delay_ms,
            "teoRateLimit": args.teo_rate_limit,
            "sslRateLimit": args.ssl_rate_limit,
            "operatorArgs": args.operator_args,
            "skipBaseline": args.skip_baseline,
        }),
        machine,
        lower_bound: bound.clone(),
        coalesced,
        baseline,
        ratios,
        targets,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&args.output, json + "\n")
        .with_context(|| format!("writing {}", args.output.display()))?;
    print!("{}", report::markdown(&report));
    progress(
        started,
        format!("results written to {}", args.output.display()),
    );
    drop(control_plane);
    Ok(())
}

/// What every mode shares.
struct Bench<'a> {
    args: &'a Args,
    started: Instant,
    layout: &'a Layout,
    ca: &'a Ca,
    client: Client,
    kubeconfig: PathBuf,
    operator: PathBuf,
    log_dir: PathBuf,
    bound: &'a LowerBound,
}

/// Where a phase starts from, to measure differences.
struct Mark {
    at: Instant,
    calls: usize,
    metrics: OperatorMetrics,
    cpu: f64,
    peak_reset: bool,
}

fn condition_true(status: &EdgeOneCertificateBindingStatus, type_: &str) -> bool {
    is_true(&status.conditions, type_)
}

fn cold_done(binding: &EdgeOneCertificateBinding) -> bool {
    binding.status.as_ref().is_some_and(|s| {
        s.observed_generation == binding.metadata.generation
            && condition_true(s, READY)
            && condition_true(s, DEPLOYED)
    })
}

/// The binding serves the certificate with `fingerprint`, deployed on every host, and
/// has nothing left to delete.
fn renewed(binding: &EdgeOneCertificateBinding, fingerprint: &str, hosts: usize) -> bool {
    let Some(status) = &binding.status else {
        return false;
    };
    let Some(new) = status
        .certificates
        .iter()
        .find(|c| c.fingerprint_sha256.as_deref() == Some(fingerprint))
    else {
        return false;
    };
    cold_done(binding)
        && status.pending_deletion.is_empty()
        && status.hosts.len() == hosts
        && status
            .hosts
            .iter()
            .all(|h| h.cert_ids == [new.cert_id.clone()] && h.status.as_deref() == Some("deployed"))
}

impl Bench<'_> {
    fn progress(&self, message: impl std::fmt::Display) {
        progress(self.started, message);
    }

    async fn mark(&self, operator: &Operator, emulator: &Emulator) -> Result<Mark> {
        let http = reqwest::Client::new();
        Ok(Mark {
            at: Instant::now(),
            calls: emulator.calls().len(),
            metrics: measure::scrape(&http, &operator.health_addr)
                .await
                .unwrap_or_default(),
            cpu: measure::cpu_seconds(operator.pid)?,
            peak_reset: measure::reset_peak_rss(operator.pid),
        })
    }

    /// The figures of the phase that started at `mark`.
    async fn measure(
        &self,
        mark: &Mark,
        operator: &Operator,
        emulator: &Emulator,
        seconds: f64,
    ) -> Result<Phase> {
        let calls = emulator.calls();
        let calls = &calls[mark.calls.min(calls.len())..];
        let counters = measure::count(calls);
        let http = reqwest::Client::new();
        // The operator's counters: retried, as /metrics may be slow under load.
        let mut metrics = None;
        for _ in 0..5 {
            match measure::scrape(&http, &operator.health_addr).await {
                Ok(m) => {
                    metrics = Some(m);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let metrics = metrics
            .context("the operator's /metrics did not answer")?
            .since(&mark.metrics);
        let calls_by_action = counters
            .iter()
            .map(|(a, o)| (a.clone(), o.values().sum()))
            .collect();
        Ok(Phase {
            completed: true,
            seconds,
            bindings_done: 0,
            total_calls: calls.len() as u64,
            throttled_answers: measure::throttled(&counters),
            calls_by_action,
            calls: counters,
            operator_throttled: metrics.throttled,
            operator_calls: metrics.calls,
            status_patches: metrics.status_patches,
            status_patches_per_binding: metrics.status_patches / self.layout.bindings as f64,
            peak_rss_mib: measure::vm_mib(operator.pid, "VmHWM")?,
            peak_rss_reset: mark.peak_reset,
            rss_end_mib: measure::vm_mib(operator.pid, "VmRSS")?,
            cpu_seconds: measure::cpu_seconds(operator.pid)? - mark.cpu,
            ..Phase::default()
        })
    }

    /// Polls until `done` says how many bindings are done and whether all are, or the
    /// timeout passes; returns (converged, elapsed since `since`, bindings done).
    async fn wait_until(
        &self,
        what: &str,
        since: Instant,
        operator: &mut Operator,
        mut done: impl FnMut() -> (usize, bool),
    ) -> Result<(bool, f64, usize)> {
        let mut next_report = Instant::now() + Duration::from_secs(10);
        loop {
            let (count, all) = done();
            let elapsed = since.elapsed().as_secs_f64();
            if all {
                return Ok((true, elapsed, count));
            }
            if since.elapsed() > self.args.phase_timeout {
                self.progress(format!(
                    "{what}: timed out after {elapsed:.0} s with {count}/{} bindings done; operator log: {}",
                    self.layout.bindings,
                    operator.log.display()
                ));
                return Ok((false, elapsed, count));
            }
            if Instant::now() >= next_report {
                self.progress(format!(
                    "{what}: {count}/{} bindings done after {elapsed:.0} s",
                    self.layout.bindings
                ));
                next_report += Duration::from_secs(10);
            }
            operator.check_alive()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn run_mode(&self, mode: &str, mode_args: &[&str]) -> Result<ModeResult> {
        let args = self.args;
        let layout = self.layout;
        let namespace = testbed::fresh_namespace(&self.client, &format!("bench-{mode}")).await?;
        self.progress(format!("{mode}: setting up namespace {namespace}"));
        let emulator = world::start_emulator(world::start_state(
            layout,
            &EmulatorConfig {
                teo_rate_limit: args.teo_rate_limit,
                ssl_rate_limit: args.ssl_rate_limit,
                latency_ms: args.latency_ms,
                deploy_delay_ms: args.deploy_delay_ms,
            },
        )?)
        .await?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let bindings: Api<EdgeOneCertificateBinding> =
            Api::namespaced(self.client.clone(), &namespace);

        let setup = Instant::now();
        let leaves = world::issue_leaves(layout, self.ca)?;
        // The renewal's certificates are issued now, so the wave is only the writes.
        let renewed_leaves = world::issue_leaves(layout, self.ca)?;
        world::put_secrets(
            &secrets,
            world::cert_secrets(layout, self.ca, &leaves),
            args.concurrency,
            false,
        )
        .await?;
        self.progress(format!(
            "{mode}: {} certificate Secrets created; creating {} unrelated Secrets of {} KiB",
            leaves.len(),
            args.unrelated_secrets,
            args.unrelated_secret_kib
        ));
        // In batches, so that only a batch of 64 KiB blobs is in memory at a time.
        for batch in (0..args.unrelated_secrets).collect::<Vec<_>>().chunks(256) {
            let batch: Vec<Secret> = batch
                .iter()
                .map(|i| world::unrelated_secret(*i, args.unrelated_secret_kib))
                .collect();
            world::put_secrets(&secrets, batch, args.concurrency, false).await?;
        }
        self.progress(format!("{mode}: creating {} bindings", layout.bindings));
        world::create_bindings(&bindings, layout, args.concurrency).await?;
        let store = world::watch_bindings(bindings.clone()).await?;
        let setup_seconds = setup.elapsed().as_secs_f64();
        self.progress(format!(
            "{mode}: set up in {setup_seconds:.1} s; starting the operator"
        ));

        let mut operator_args: Vec<String> = vec![
            "--drift-interval".into(),
            humantime::format_duration(args.drift_interval).to_string(),
            "--log-level".into(),
            args.operator_log_level.clone(),
        ];
        operator_args.extend(mode_args.iter().map(|a| a.to_string()));
        operator_args.extend(args.operator_args.iter().cloned());
        let log = self.log_dir.join(format!("{mode}-operator.log"));
        let cold_start = Instant::now();
        let mut operator = Operator::start(OperatorLaunch {
            binary: &self.operator,
            kubeconfig: &self.kubeconfig,
            namespace: &namespace,
            endpoint: &emulator.url(),
            log: log.clone(),
            args: operator_args.clone(),
        })?;

        // 1. Cold start: from the operator's start to every binding Ready and Deployed.
        let (completed, seconds, count) = self
            .wait_until(
                &format!("{mode} cold start"),
                cold_start,
                &mut operator,
                || count_done(&store, layout.bindings, cold_done),
            )
            .await?;
        let start_mark = Mark {
            at: cold_start,
            calls: 0,
            metrics: OperatorMetrics::default(),
            cpu: 0.0,
            peak_reset: true,
        };
        let mut cold = self
            .measure(&start_mark, &operator, &emulator, seconds)
            .await?;
        cold.completed = completed;
        cold.bindings_done = count;
        cold.lower_bound_seconds = Some(self.bound.seconds);
        cold.ratio_to_lower_bound = Some(seconds / self.bound.seconds);
        self.progress(format!(
            "{mode}: cold start {} in {seconds:.2} s ({} calls, peak RSS {:.1} MiB)",
            if completed {
                "converged"
            } else {
                "did not converge"
            },
            cold.total_calls,
            cold.peak_rss_mib
        ));
        let mut between = emulator.calls().len();
        tokio::time::sleep(args.settle).await;
        let mut calls_between = emulator.calls()[between..].to_vec();

        // 2. Renewal wave: every Secret gets a new certificate at once.
        let old_fingerprints: BTreeSet<String> =
            leaves.iter().map(|l| l.fingerprint.clone()).collect();
        let mark = self.mark(&operator, &emulator).await?;
        self.progress(format!(
            "{mode}: renewal wave: replacing the certificate in {} Secrets",
            renewed_leaves.len()
        ));
        world::put_secrets(
            &secrets,
            world::cert_secrets(layout, self.ca, &renewed_leaves),
            renewed_leaves.len(),
            true,
        )
        .await?;
        let expected = expected_fingerprints(layout, &renewed_leaves);
        let (completed, seconds, count) = self
            .wait_until(&format!("{mode} renewal"), mark.at, &mut operator, || {
                let (count, all) = count_done(&store, layout.bindings, |b| {
                    expected
                        .get(b.metadata.name.as_deref().unwrap_or_default())
                        .is_some_and(|(fingerprint, hosts)| renewed(b, fingerprint, *hosts))
                });
                let old_left = emulator.with_state(|s| {
                    s.certificates
                        .values()
                        .filter(|c| {
                            c.fingerprint
                                .as_ref()
                                .is_some_and(|f| old_fingerprints.contains(f))
                        })
                        .count()
                });
                (count, all && old_left == 0)
            })
            .await?;
        let mut renewal = self.measure(&mark, &operator, &emulator, seconds).await?;
        renewal.completed = completed;
        renewal.bindings_done = count;
        renewal.lower_bound_seconds = Some(self.bound.seconds);
        renewal.ratio_to_lower_bound = Some(seconds / self.bound.seconds);
        self.progress(format!(
            "{mode}: renewal {} in {seconds:.2} s ({} calls)",
            if completed {
                "converged"
            } else {
                "did not converge"
            },
            renewal.total_calls
        ));
        between = emulator.calls().len();
        tokio::time::sleep(args.settle).await;
        calls_between.extend_from_slice(&emulator.calls()[between..]);

        // 3. Steady state: nothing changes for `idle`.
        self.progress(format!(
            "{mode}: steady state for {}",
            humantime::format_duration(args.idle)
        ));
        let mark = self.mark(&operator, &emulator).await?;
        let end = mark.at + args.idle;
        while Instant::now() < end {
            operator.check_alive()?;
            tokio::time::sleep(
                end.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(500)),
            )
            .await;
        }
        let mut steady = self
            .measure(&mark, &operator, &emulator, mark.at.elapsed().as_secs_f64())
            .await?;
        let intervals = args.idle.as_secs_f64() / args.drift_interval.as_secs_f64();
        steady.intervals = Some(intervals);
        steady.describe_zones_x_intervals = Some(layout.zones as f64 * intervals);
        steady.describe_bindings_x_intervals = Some(layout.bindings as f64 * intervals);
        self.progress(format!(
            "{mode}: steady state: {} Modify, {} Describe calls, {:.2} CPU s",
            steady.calls_of(report::MODIFY),
            steady.calls_of(report::DESCRIBE),
            steady.cpu_seconds
        ));
        operator.stop();
        Ok(ModeResult {
            mode: mode.to_owned(),
            operator_args,
            namespace,
            operator_log: log.display().to_string(),
            setup_seconds,
            cold_start: cold,
            renewal,
            steady_state: steady,
            calls_between_phases: measure::count(&calls_between),
        })
    }
}

/// Per binding name: the fingerprint of its Secret's renewed certificate and its
/// number of hosts.
fn expected_fingerprints(layout: &Layout, leaves: &[Leaf]) -> HashMap<String, (String, usize)> {
    layout
        .all_bindings()
        .into_iter()
        .map(|b| {
            (
                b.name,
                (leaves[b.secret].fingerprint.clone(), b.hosts.len()),
            )
        })
        .collect()
}

/// How many bindings satisfy `done`, and whether all `expected` of them do.
fn count_done(
    store: &Store<EdgeOneCertificateBinding>,
    expected: usize,
    done: impl Fn(&EdgeOneCertificateBinding) -> bool,
) -> (usize, bool) {
    let count = store.state().iter().filter(|b| done(b)).count();
    (count, count >= expected)
}
