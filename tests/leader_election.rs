//! Leader election with two operator processes on the real apiserver: one reconciles,
//! the other waits; when the leader is killed the standby takes over; a leader whose
//! lease is taken stops at once.

mod common;

use std::time::{Duration, Instant};

use common::{World, ZONE};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

/// Short timings so that a takeover happens within seconds.
fn election_args(lease: &str) -> Vec<String> {
    [
        "--leader-elect",
        "--leader-election-namespace",
        "default",
        "--leader-election-id",
        lease,
        "--leader-election-lease-duration",
        "4s",
        "--leader-election-renew-deadline",
        "3s",
        "--leader-election-retry-period",
        "500ms",
    ]
    .map(str::to_owned)
    .to_vec()
}

async fn holder(world: &World, lease: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), "default");
    leases
        .get_opt(lease)
        .await
        .expect("get lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Waits until the lease names the process `pid` (identities end in `-<pid>`).
async fn wait_holder(world: &World, lease: &str, pid: u32) -> Lease {
    let start = Instant::now();
    loop {
        if holder(world, lease)
            .await
            .is_some_and(|h| h.ends_with(&format!("-{pid}")))
        {
            let leases: Api<Lease> = Api::namespaced(world.client.clone(), "default");
            return leases.get(lease).await.expect("get lease");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "process {pid} never became the leader; holder: {:?}; logs: {}",
            holder(world, lease).await,
            world.log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn log_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_standby_takes_over_when_the_leader_dies() {
    let lease = format!("eco-failover-{}", std::process::id());
    let args = election_args(&lease);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut world = World::new("leader", &args).await;
    let first = world.operator.child.id();
    wait_holder(&world, &lease, first).await;
    let standby = world.another_operator("-standby", &args);

    world
        .create(
            "before",
            json!({"zoneId": ZONE, "hosts": ["abc.test.com"], "mode": "sslcert",
                   "serverCertificates": [{"certId": "cert-244ffgv7m17xw"}]}),
        )
        .await;
    world.wait_ready("before").await;
    let standby_log = log_of(&standby.log);
    assert!(
        !standby_log.contains("became the leader") && !standby_log.contains("reconciled"),
        "the standby acted while the leader lived: {}",
        standby.log.display()
    );

    world.operator.kill();
    let taken = wait_holder(&world, &lease, standby.child.id()).await;
    assert_eq!(
        taken.spec.and_then(|s| s.lease_transitions),
        Some(1),
        "one change of holder"
    );
    world
        .create(
            "after",
            json!({"zoneId": ZONE, "hosts": ["www.test.com"], "mode": "sslcert",
                   "serverCertificates": [{"certId": "cert-244ffgv7m17xw"}]}),
        )
        .await;
    world.wait_ready("after").await;
    assert!(log_of(&standby.log).contains("became the leader"));
    // Each host was changed once: the new leader found "before" in sync and left it.
    assert_eq!(world.modifies_of("abc.test.com").len(), 1);
    assert_eq!(world.modifies_of("www.test.com").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_whose_lease_is_taken_stops_at_once() {
    let lease = format!("eco-stolen-{}", std::process::id());
    let args = election_args(&lease);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut world = World::new("stolen", &args).await;
    wait_holder(&world, &lease, world.operator.child.id()).await;

    // Another candidate (here: by hand) writes itself into the lease.
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), "default");
    let mut stolen = leases.get(&lease).await.expect("get lease");
    let spec = stolen.spec.as_mut().expect("spec");
    spec.holder_identity = Some("intruder".into());
    spec.lease_duration_seconds = Some(60);
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        jiff::Timestamp::now(),
    ));
    leases
        .replace(&lease, &Default::default(), &stolen)
        .await
        .expect("take the lease");

    let start = Instant::now();
    let status = loop {
        if let Some(status) = world.operator.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the leader kept running without its lease; log: {}",
            world.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success(), "it exits with an error");
    assert!(log_of(&world.log).contains("leadership lost"));
    assert_eq!(holder(&world, &lease).await.as_deref(), Some("intruder"));
}
