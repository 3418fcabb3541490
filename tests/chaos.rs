//! Faults, crashes and restarts lose nothing: on the real control plane and the
//! emulator, bindings converge through injected API faults, SIGKILLs of the operator
//! at bad moments, a kube-apiserver restart, a SIGTERM with work in flight and many
//! bindings created at once; afterwards a checker compares every binding's desired
//! state with what the emulator serves, host by host.
//!
//! Sizes come from the environment so that `make test` runs them small and
//! `make chaos` large: CHAOS_BINDINGS (fault run, default 200), CHAOS_KILLS (default
//! 3) and CHAOS_KILL_BINDINGS (default 40), CHAOS_MANY (bindings created at once,
//! default 500).

mod common;

use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use edgeone_cert_operator::api::EdgeOneCertificateBinding;
use futures::{StreamExt, TryStreamExt, stream};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use teo_emulator::{Seed, State};
use testbed::issuer::{Ca, Leaf};

const UIN: &str = "100000000001";
const CHAOS_ZONE: &str = "zone-chaos000001";
const DOMAIN: &str = "chaos.test";
/// Certificates that exist in the account before the test, by id.
const SEEDED_CERTS: [&str; 2] = ["cert-chaos-a", "cert-chaos-b"];
/// Every few bindings read their certificate from a Secret (an upload); the rest name
/// a seeded certificate.
const SECRET_EVERY: usize = 4;
/// Bindings per Secret.
const PER_SECRET: usize = 5;
/// Longest wait for a run to converge.
const CONVERGE: Duration = Duration::from_secs(300);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn host(i: usize) -> String {
    format!("h{i}.{DOMAIN}")
}

/// An emulator account with one zone of `hosts` hosts and the seeded certificates.
fn chaos_state(hosts: usize) -> State {
    let seed: Seed = serde_json::from_value(json!({
        "accounts": [{"secretId": SECRET_ID, "secretKey": SECRET_KEY, "uin": UIN}],
        "zones": [{
            "zoneId": CHAOS_ZONE,
            "uin": UIN,
            "name": DOMAIN,
            "hosts": (0..hosts).map(host).collect::<Vec<_>>(),
        }],
        "certificates": SEEDED_CERTS.iter().map(|id| json!({
            "certId": id,
            "uin": UIN,
            "type": "SVR",
            "domains": [format!("*.{DOMAIN}")],
            "notAfter": "2030-01-01T00:00:00Z",
        })).collect::<Vec<_>>(),
        "settings": {"deployDelayMs": 300},
    }))
    .expect("the chaos seed");
    State::from_seed(&seed).expect("state")
}

/// Where a binding's certificate comes from.
#[derive(Clone, Debug)]
enum Source {
    CertId(&'static str),
    Secret(String),
}

#[derive(Clone, Debug)]
struct Planned {
    name: String,
    hosts: Vec<String>,
    source: Source,
}

impl Planned {
    fn spec(&self) -> Value {
        let certificate = match &self.source {
            Source::CertId(id) => json!({"certId": id}),
            Source::Secret(name) => json!({"secretRef": {"name": name}}),
        };
        json!({
            "zoneId": CHAOS_ZONE,
            "hosts": self.hosts,
            "mode": "sslcert",
            "serverCertificates": [certificate],
            "deletionPolicy": "Disable",
        })
    }
}

/// `n` bindings of two hosts each; every SECRET_EVERY-th reads one of the Secrets
/// (PER_SECRET bindings each) when `with_secrets`, otherwise all name seeded ids.
fn plan(n: usize, with_secrets: bool) -> (Vec<Planned>, usize) {
    let mut secrets = 0;
    let mut uses = 0;
    let planned = (0..n)
        .map(|i| {
            let source = if with_secrets && i % SECRET_EVERY == 0 {
                let secret = uses / PER_SECRET;
                uses += 1;
                secrets = secrets.max(secret + 1);
                Source::Secret(format!("tls-{secret}"))
            } else {
                Source::CertId(SEEDED_CERTS[i % SEEDED_CERTS.len()])
            };
            Planned {
                name: format!("b{i}"),
                hosts: vec![host(2 * i), host(2 * i + 1)],
                source,
            }
        })
        .collect();
    (planned, secrets)
}

/// Creates the Secrets (one leaf for `*.chaos.test` each) and returns their leaves.
async fn put_secrets(world: &World, ca: &Ca, count: usize) -> BTreeMap<String, Leaf> {
    let mut leaves = BTreeMap::new();
    for i in 0..count {
        let name = format!("tls-{i}");
        let leaf = ca.issue(&[format!("*.{DOMAIN}")]).expect("leaf");
        world
            .put_secret(ca.secret(&name, &[format!("*.{DOMAIN}")], &leaf))
            .await;
        leaves.insert(name, leaf);
    }
    leaves
}

/// Creates the bindings, 16 at a time, as a GitOps tool applying a directory would.
async fn create_all(world: &World, planned: &[Planned]) {
    let api = world.bindings();
    stream::iter(planned)
        .map(|p| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &binding(&p.name, p.spec()))
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("create the bindings");
}

fn ready_and_deployed(binding: &EdgeOneCertificateBinding) -> bool {
    binding.status.as_ref().is_some_and(|s| {
        condition(s, "Ready") == Some("True")
            && condition(s, "Deployed") == Some("True")
            && s.observed_generation == binding.metadata.generation
    })
}

/// Polls until every binding is Ready and Deployed, calling `each_poll` on the way
/// (to look at the emulator while it happens); returns the bindings.
async fn wait_all_ready(
    world: &World,
    expected: usize,
    mut each_poll: impl FnMut(&World),
) -> Vec<EdgeOneCertificateBinding> {
    let start = Instant::now();
    loop {
        each_poll(world);
        let list = world
            .bindings()
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let done = list.iter().filter(|b| ready_and_deployed(b)).count();
        if done == expected && list.len() == expected {
            return list;
        }
        if start.elapsed() > CONVERGE {
            let stuck: Vec<String> = list
                .iter()
                .filter(|b| !ready_and_deployed(b))
                .take(5)
                .map(|b| format!("{}: {:?}", b.name_any(), b.status))
                .collect();
            panic!(
                "{done}/{expected} bindings Ready and Deployed after {CONVERGE:?}; operator log: {}\nfirst stuck: {stuck:#?}",
                world.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Emulator certificates that were uploaded (they have a fingerprint), by fingerprint.
fn uploads_by_fingerprint(world: &World) -> BTreeMap<String, Vec<String>> {
    world.emulator.with_state(|s| {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in s.certificates.values() {
            if let Some(f) = &c.fingerprint {
                by.entry(f.clone()).or_default().push(c.cert_id.clone());
            }
        }
        by
    })
}

/// Fingerprints with more than one certificate in the account.
fn duplicated_uploads(world: &World) -> Vec<(String, Vec<String>)> {
    uploads_by_fingerprint(world)
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect()
}

/// Every difference between what the bindings ask for and what the emulator serves,
/// host by host, as readable lines (empty: none).
fn differences(world: &World, planned: &[Planned], leaves: &BTreeMap<String, Leaf>) -> Vec<String> {
    let uploads = uploads_by_fingerprint(world);
    world.emulator.with_state(|s| {
        let mut found = Vec::new();
        for p in planned {
            let want: Vec<String> = match &p.source {
                Source::CertId(id) => vec![id.to_string()],
                Source::Secret(name) => {
                    let fingerprint = &leaves[name].fingerprint;
                    match uploads.get(fingerprint).map(Vec::as_slice) {
                        Some([id]) => vec![id.clone()],
                        other => {
                            found.push(format!(
                                "{}: the certificate of Secret {name} is uploaded as {other:?}, not exactly once",
                                p.name
                            ));
                            continue;
                        }
                    }
                }
            };
            for h in &p.hosts {
                match s.domains.get(&(CHAOS_ZONE.to_owned(), h.clone())) {
                    None => found.push(format!("{}: host {h} is missing", p.name)),
                    Some(d) if d.config.mode != "sslcert" => found.push(format!(
                        "{}: host {h} has mode {}, wants sslcert",
                        p.name, d.config.mode
                    )),
                    Some(d) if d.config.server_cert_ids != want => found.push(format!(
                        "{}: host {h} serves {:?}, wants {want:?}",
                        p.name, d.config.server_cert_ids
                    )),
                    Some(_) => {}
                }
            }
        }
        found
    })
}

fn peak_rss_mib(pid: u32) -> f64 {
    testbed::process::status_kib(pid, "VmHWM").expect("the operator's /proc status") as f64 / 1024.0
}

fn assert_no_panic(world: &World) {
    let log = std::fs::read_to_string(&world.log).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "the operator panicked; log: {}",
        world.log.display()
    );
}

/// Tallies of the emulator's answers by outcome, for the report.
fn outcomes(world: &World) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for c in world.emulator.calls() {
        *by.entry(c.outcome).or_insert(0) += 1;
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_in_five_failing_still_converges_to_exactly_the_desired_state() {
    let n = env_usize("CHAOS_BINDINGS", 200);
    let (planned, secrets) = plan(n, true);
    let state = chaos_state(2 * n);
    let world = World::start(install_crd(), "chaos-faults", state, &[]).await;
    let ca = Ca::new().expect("CA");
    let leaves = put_secrets(&world, &ca, secrets).await;
    // About 20% of the calls fail in one of the ways the real API and its load
    // balancers fail, and 1% wait 5 s first.
    world.emulator.with_state(|s| {
        s.faults = serde_json::from_value(json!({"*": {
            "internalError": 0.04, "http502": 0.03, "http503": 0.03,
            "actionInProgress": 0.04, "configLocked": 0.03, "drop": 0.03,
            "latencyMs": 5000, "latencyProbability": 0.01,
        }}))
        .expect("faults")
    });
    let started = Instant::now();
    create_all(&world, &planned).await;
    let mut duplicates = Vec::new();
    wait_all_ready(&world, n, |w| duplicates.extend(duplicated_uploads(w))).await;
    let took = started.elapsed();
    let tally = outcomes(&world);
    eprintln!(
        "chaos faults: {n} bindings ({secrets} Secrets) converged in {took:.1?}; emulator answers: {tally:?}"
    );
    let failed: usize = tally
        .iter()
        .filter(|(o, _)| o.as_str() != "Success")
        .map(|(_, c)| c)
        .sum();
    assert!(
        failed > 0,
        "no fault was injected, so this run proves nothing: {tally:?}"
    );
    assert_eq!(duplicates, vec![], "a certificate was uploaded twice");
    let wrong = differences(&world, &planned, &leaves);
    assert!(
        wrong.is_empty(),
        "{} differences between the bindings and EdgeOne:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_no_panic(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_bad_moments_loses_nothing_and_leaves_no_orphan() {
    let n = env_usize("CHAOS_KILL_BINDINGS", 40);
    let kills = env_usize("CHAOS_KILLS", 3);
    // Every binding reads a Secret, so uploads and binds interleave.
    let planned: Vec<Planned> = (0..n)
        .map(|i| Planned {
            name: format!("k{i}"),
            hosts: vec![host(2 * i), host(2 * i + 1)],
            source: Source::Secret(format!("tls-{}", i / PER_SECRET)),
        })
        .collect();
    let secrets = n.div_ceil(PER_SECRET);
    let mut state = chaos_state(2 * n);
    // Slow calls widen the windows a kill can land in.
    state.faults = serde_json::from_value(json!({
        "UploadCertificate": {"latencyMs": 300},
        "ModifyHostsCertificate": {"latencyMs": 400},
    }))
    .expect("faults");
    let mut world = World::start(install_crd(), "chaos-kill", state, &[]).await;
    let ca = Ca::new().expect("CA");
    let mut leaves = put_secrets(&world, &ca, secrets).await;
    create_all(&world, &planned).await;

    let mut duplicates = Vec::new();
    let mut moments = Vec::new();
    for kill in 0..kills {
        // From the second round on, cert-manager renews one Secret, so that there is
        // an upload, binds and the deletion of the replaced upload to interrupt.
        if kill > 0 {
            let name = format!("tls-{}", kill % secrets);
            let leaf = ca.issue(&[format!("*.{DOMAIN}")]).expect("leaf");
            world
                .put_secret(ca.secret(&name, &[format!("*.{DOMAIN}")], &leaf))
                .await;
            leaves.insert(name, leaf);
        }
        // Rotate through the moments that hurt most: right after an upload succeeded
        // (before its bind), while a coalesced Modify is in flight (a Modify was just
        // answered and others are queued behind the limiter), and at a random time.
        let calls_before = world.emulator.calls().len();
        let moment = match kill % 3 {
            0 => "after an UploadCertificate, before its bind",
            1 => "with ModifyHostsCertificate calls in flight",
            _ => "at a random moment",
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            duplicates.extend(duplicated_uploads(&world));
            let new = &world.emulator.calls()[calls_before..];
            let hit = match kill % 3 {
                0 => new.iter().any(|c| c.action == "UploadCertificate"),
                1 => new.iter().any(|c| c.action == "ModifyHostsCertificate"),
                _ => !new.is_empty() && rand_delay_passed(calls_before, new.len()),
            };
            if hit || Instant::now() > deadline {
                moments.push(format!("{moment} (hit: {hit})"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        world.operator.kill();
        world.restart_operator();
    }
    wait_all_ready(&world, n, |w| duplicates.extend(duplicated_uploads(w))).await;
    eprintln!("chaos kills: {kills} SIGKILLs: {moments:#?}");
    assert_eq!(duplicates, vec![], "a certificate was uploaded twice");
    let wrong = differences(&world, &planned, &leaves);
    assert!(wrong.is_empty(), "differences:\n{}", wrong.join("\n"));
    // Replaced uploads are deleted (once no binding serves them any more): in the end
    // exactly the Secrets' current certificates are left.
    let current: BTreeSet<String> = leaves.values().map(|l| l.fingerprint.clone()).collect();
    let start = Instant::now();
    loop {
        let kept: BTreeSet<String> = uploads_by_fingerprint(&world).into_keys().collect();
        if kept == current {
            break;
        }
        if start.elapsed() > WAIT {
            let statuses: Vec<String> = world
                .bindings()
                .list(&ListParams::default())
                .await
                .expect("list")
                .items
                .iter()
                .map(|b| {
                    let s = b.status.clone().unwrap_or_default();
                    let ids: Vec<&String> = s.certificates.iter().map(|c| &c.cert_id).collect();
                    format!("{}: {ids:?} pending {:?}", b.name_any(), s.pending_deletion)
                })
                .collect();
            let cleanup_calls: Vec<String> = world
                .emulator
                .calls()
                .iter()
                .filter(|c| {
                    c.action.ends_with("Certificate") && c.action != "ModifyHostsCertificate"
                })
                .map(|c| {
                    format!(
                        "{} {} {}",
                        c.action,
                        c.request
                            .get("CertificateId")
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                        c.outcome
                    )
                })
                .collect();
            panic!(
                "uploads left: {:#?}; the Secrets' current certificates: {current:?}; bindings: {statuses:#?}; certificate calls: {cleanup_calls:#?}; operator log: {}",
                uploads_by_fingerprint(&world),
                world.log.display()
            );
        }
        tokio::time::sleep(POLL).await;
    }

    // Deleting every binding (deletionPolicy Disable, cleanup on by default) leaves no
    // upload behind and every host disabled.
    world
        .bindings()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete the bindings");
    let start = Instant::now();
    loop {
        let left = world
            .bindings()
            .list(&ListParams::default())
            .await
            .map_or(usize::MAX, |l| l.items.len());
        let uploads = uploads_by_fingerprint(&world);
        if left == 0 && uploads.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "after deleting the bindings: {left} bindings and these uploads remain: {uploads:?}; operator log: {}",
            world.log.display()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let enabled: Vec<String> = world.emulator.with_state(|s| {
        s.domains
            .values()
            .filter(|d| d.config.mode != "disable")
            .map(|d| d.name.clone())
            .collect()
    });
    assert_eq!(enabled, Vec::<String>::new(), "hosts left enabled");
    assert_no_panic(&world);
}

/// A pseudo-random moment: after between 1 and 30 new calls, chosen by the count of
/// calls before (deterministic per run, different between kills).
fn rand_delay_passed(seed: usize, new_calls: usize) -> bool {
    new_calls > (seed.wrapping_mul(2_654_435_761) >> 7) % 30
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kube_apiserver_restart_loses_no_binding() {
    // A private control plane: restarting the shared one would disturb other tests.
    let cp = tokio::task::spawn_blocking(|| testbed::ControlPlane::start(Default::default()))
        .await
        .expect("join")
        .expect("a private control plane");
    apply_crd(&cp);
    let (planned, _) = plan(20, false);
    let mut world = World::start(&cp, "chaos-apiserver", chaos_state(40), &[]).await;
    create_all(&world, &planned[..10]).await;
    wait_all_ready(&world, 10, |_| {}).await;

    // kube-apiserver goes away for 3 s (watches break, connections are refused).
    let cp = std::sync::Arc::new(cp);
    let restarting = cp.clone();
    tokio::task::spawn_blocking(move || restarting.restart_apiserver(Duration::from_secs(3)))
        .await
        .expect("join")
        .expect("restart kube-apiserver");

    // Bindings created and changed after the restart are all seen.
    let client = cp.kube_client().await.expect("client after the restart");
    let api: kube::Api<EdgeOneCertificateBinding> = kube::Api::namespaced(client, &world.namespace);
    for p in &planned[10..] {
        api.create(&PostParams::default(), &binding(&p.name, p.spec()))
            .await
            .expect("create after the restart");
    }
    let mut changed = planned.clone();
    // b0 named the first seeded certificate; now the second.
    changed[0].source = Source::CertId(SEEDED_CERTS[1]);
    api.patch(
        "b0",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": changed[0].spec()})),
    )
    .await
    .expect("change b0 after the restart");
    wait_all_ready(&world, 20, |_| {}).await;
    let wrong = differences(&world, &changed, &BTreeMap::new());
    assert!(wrong.is_empty(), "differences:\n{}", wrong.join("\n"));
    assert!(
        world.operator.child.try_wait().expect("wait").is_none(),
        "the operator exited during the restart; log: {}",
        world.log.display()
    );
    assert_no_panic(&world);
    drop(world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_calls_in_flight_ends_cleanly() {
    let (planned, _) = plan(10, false);
    let mut state = chaos_state(20);
    state.faults = serde_json::from_value(json!({
        "ModifyHostsCertificate": {"latencyMs": 1500},
    }))
    .expect("faults");
    let mut world = World::start(install_crd(), "chaos-sigterm", state, &[]).await;
    create_all(&world, &planned).await;
    // Wait until the first Modify has been answered: others are on the wire now.
    let start = Instant::now();
    while !world
        .emulator
        .calls()
        .iter()
        .any(|c| c.action == "ModifyHostsCertificate")
    {
        assert!(start.elapsed() < WAIT, "no ModifyHostsCertificate");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = world.operator.child.id();
    let signalled = Instant::now();
    testbed::process::signal(pid, libc::SIGTERM);
    let status = loop {
        if let Some(status) = world.operator.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(25),
            "the operator did not exit within 25 s of SIGTERM (the chart's grace period is 30 s); log: {}",
            world.log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "chaos sigterm: exited {status} {:.1?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // Every status written is whole: a Synced binding names its RequestId and hosts.
    for b in world
        .bindings()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        if let Some(s) = &b.status
            && condition(s, "Synced") == Some("True")
        {
            assert!(
                s.request_id.is_some() && s.observed_generation.is_some(),
                "{}: a Synced status without its RequestId or generation: {s:?}",
                b.name_any()
            );
        }
    }
    // A new process finishes the work.
    world.restart_operator();
    wait_all_ready(&world, planned.len(), |_| {}).await;
    let wrong = differences(&world, &planned, &BTreeMap::new());
    assert!(wrong.is_empty(), "differences:\n{}", wrong.join("\n"));
    assert_no_panic(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_bindings_at_once_all_progress_in_bounded_memory() {
    let n = env_usize("CHAOS_MANY", 500);
    let (planned, _) = plan(n, false);
    let world = World::start(
        install_crd(),
        "chaos-many",
        chaos_state(2 * n),
        &["--log-level", "info"],
    )
    .await;
    let started = Instant::now();
    create_all(&world, &planned).await;
    let created = started.elapsed();
    let list = wait_all_ready(&world, n, |_| {}).await;
    let took = started.elapsed();
    // Time from creation to Ready per binding: no binding waits far longer than the
    // rest (fair progress, no starvation).
    let mut waits: Vec<f64> = list
        .iter()
        .filter_map(|b| {
            let created = b.metadata.creation_timestamp.as_ref()?.0;
            let ready = b
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")?
                .last_transition_time
                .0;
            Some(ready.duration_since(created).as_secs_f64())
        })
        .collect();
    waits.sort_by(f64::total_cmp);
    let pick = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    let rss = peak_rss_mib(world.operator.child.id());
    let modifies = world.calls("ModifyHostsCertificate").len();
    eprintln!(
        "chaos many: {n} bindings created in {created:.1?}, all Ready in {took:.1?}; creation→Ready p50 {:.1} s, p99 {:.1} s, max {:.1} s; {modifies} ModifyHostsCertificate calls; operator peak RSS {rss:.1} MiB",
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    assert_eq!(waits.len(), n, "every binding has a Ready time");
    // The chart's memory limit: above it the pod is OOM-killed.
    assert!(
        rss < 256.0,
        "peak RSS {rss:.1} MiB is over the chart's 256 MiB limit"
    );
    let wrong = differences(&world, &planned, &BTreeMap::new());
    assert!(wrong.is_empty(), "differences:\n{}", wrong.join("\n"));
    assert_no_panic(&world);
}
