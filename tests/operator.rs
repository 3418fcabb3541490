//! End to end: the operator binary as a process against the real kube-apiserver (the
//! shared test control plane) and the Tencent Cloud API emulator. Each test has its
//! own namespace, emulator and operator process watching only that namespace.

mod common;

use common::*;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CERT: &str = "cert-244ffgv7m17xw";
const CLIENT_CA: &str = "J2JqATrt";

fn ssl_spec(hosts: &[&str], cert: &str) -> Value {
    json!({"zoneId": ZONE, "hosts": hosts, "mode": "sslcert", "serverCertificates": [{"certId": cert}]})
}

#[tokio::test]
async fn seed_document_examples_become_ready() {
    let world = World::new("examples", &[]).await;
    // The document's three examples, one binding each on hosts of their own.
    world
        .create("sslcert", ssl_spec(&["abc.test.com"], CERT))
        .await;
    world
        .create(
            "freecert",
            json!({"zoneId": ZONE, "hosts": ["api.test.com"], "mode": "eofreecert"}),
        )
        .await;
    world
        .create(
            "edge-mtls",
            json!({"zoneId": ZONE, "hosts": ["www.test.com"], "mode": "sslcert", "serverCertificates": [{"certId": CERT}],
                   "clientAuthentication": {"enabled": true, "caCertificates": [{"certId": CLIENT_CA}]}}),
        )
        .await;
    for name in ["sslcert", "freecert", "edge-mtls"] {
        let status = world.wait_ready(name).await;
        assert_eq!(condition(&status, "Synced"), Some("True"));
        assert_eq!(condition(&status, "Deployed"), Some("True"));
        let request_id = status.request_id.expect("requestId");
        // The RequestId in status is the one the emulator answered the Modify with.
        let modify = world
            .calls("ModifyHostsCertificate")
            .into_iter()
            .find(|c| c.request_id.as_deref() == Some(request_id.as_str()));
        assert!(
            modify.is_some(),
            "{name}: {request_id} is not a ModifyHostsCertificate RequestId"
        );
    }
    let bodies: Vec<Value> = world
        .calls("ModifyHostsCertificate")
        .into_iter()
        .map(|c| c.request)
        .collect();
    assert!(bodies.contains(&json!({"ZoneId": ZONE, "Hosts": ["abc.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": CERT}]})), "{bodies:#?}");
    assert!(
        bodies.contains(&json!({"ZoneId": ZONE, "Hosts": ["api.test.com"], "Mode": "eofreecert"})),
        "{bodies:#?}"
    );
    assert!(
        bodies.contains(&json!({"ZoneId": ZONE, "Hosts": ["www.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": CERT}],
                                "ClientCertInfo": {"Switch": "on", "CertInfos": [{"CertId": CLIENT_CA}]}})),
        "{bodies:#?}"
    );
    assert_eq!(bodies.len(), 3, "one Modify per binding");

    // /metrics counts what happened.
    let metrics = world.metrics().await;
    for line in [
        r#"edgeone_cert_operator_tencent_api_calls_total{service="teo",action="ModifyHostsCertificate",code="Success"} 3"#,
        r#"edgeone_cert_operator_bindings{ready="true"} 3"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    let samples = parse_samples(&metrics);
    let sample = |name: &str| {
        samples
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("{name} not in:\n{metrics}"))
    };
    assert!(sample(r#"edgeone_cert_operator_reconciles_total{result="applied"}"#) >= 3.0);
    assert!(sample("edgeone_cert_operator_reconcile_duration_seconds_count") >= 3.0);
    assert!(sample("edgeone_cert_operator_status_patches_total") >= 3.0);
    // Every attempt passes the client-side limiter: three Modify calls, three waits.
    assert_eq!(
        sample(
            r#"edgeone_cert_operator_tencent_rate_limiter_wait_seconds_count{service="teo",action="ModifyHostsCertificate"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(
            r#"edgeone_cert_operator_tencent_api_latency_seconds_count{service="teo",action="ModifyHostsCertificate"}"#
        ),
        3.0
    );
    assert!(
        !samples
            .keys()
            .any(|k| k.starts_with("edgeone_cert_operator_tencent_api_throttled_total")),
        "no throttled answers: {metrics}"
    );

    // Ready bindings stay quiet: their own status writes trigger no further calls.
    let before = world.emulator.calls().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        world.emulator.calls().len(),
        before,
        "calls after Ready: {:#?}",
        &world.emulator.calls()[before..]
    );

    let cp = install_crd();
    let out = cp
        .kubectl()
        .args(["get", "eocb", "-n", &world.namespace])
        .output()
        .expect("kubectl get");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("READY") && table.contains("sslcert") && table.contains("True"),
        "{table}"
    );
}

#[tokio::test]
async fn tencent_errors_end_in_status_without_retry_storms() {
    let world = World::new("errors", &[]).await;
    let wrong_key = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("wrong-key".into()),
            ..Default::default()
        },
        string_data: Some(
            [
                ("secretId".to_string(), SECRET_ID.to_string()),
                ("secretKey".to_string(), "not-the-key".to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(world.client.clone(), &world.namespace)
        .create(&PostParams::default(), &wrong_key)
        .await
        .expect("secret");
    let cases = [
        (
            "zone",
            ssl_spec(&["abc.test.com"], CERT),
            "ResourceUnavailable.ZoneNotFound",
        ),
        (
            "host",
            ssl_spec(&["nope.test.com"], CERT),
            "ResourceUnavailable.HostNotFound",
        ),
        (
            "cert",
            ssl_spec(&["abc.test.com"], "cert-missing"),
            "ResourceUnavailable.CertNotFound",
        ),
        (
            "domain",
            ssl_spec(&["api.test.com"], CERT),
            "InvalidParameter.CertNotMatchDomain",
        ),
        (
            "signature",
            json!({"zoneId": ZONE, "hosts": ["abc.test.com"], "mode": "eofreecert", "credentialsRef": {"name": "wrong-key"}}),
            "AuthFailure.SignatureFailure",
        ),
    ];
    for (name, mut spec, _) in cases.clone() {
        if name == "zone" {
            spec["zoneId"] = json!("zone-doesnotexist");
        }
        world.create(name, spec).await;
    }
    for (name, _, code) in &cases {
        let status = world
            .wait_status(name, code, |s| s.last_error.is_some())
            .await;
        let error = status.last_error.clone().unwrap();
        assert_eq!(error.code, *code, "{name}");
        assert!(
            error.request_id.is_some(),
            "{name}: the RequestId of the failed call"
        );
        assert_eq!(condition(&status, "Ready"), Some("False"), "{name}");
    }
    for reason in ["TencentCloudError", "AuthFailure"] {
        world.wait_event(reason).await;
    }
    // Terminal errors are not retried until something changes.
    let before = world.emulator.calls().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        world.emulator.calls().len(),
        before,
        "terminal errors were retried"
    );
    assert!(
        before <= 2 * cases.len(),
        "{before} calls for {} failing bindings",
        cases.len()
    );

    // Fixing the credentials Secret recovers the binding that uses it, untouched.
    let fixed = json!({"stringData": {"secretKey": SECRET_KEY}});
    Api::<Secret>::namespaced(world.client.clone(), &world.namespace)
        .patch("wrong-key", &PatchParams::default(), &Patch::Merge(fixed))
        .await
        .expect("fix the secret");
    world.wait_ready("signature").await;

    // Fixing the spec recovers.
    world
        .bindings()
        .patch(
            "host",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hosts": ["abc.test.com"]}})),
        )
        .await
        .expect("patch");
    let status = world.wait_ready("host").await;
    assert!(status.last_error.is_none());
}

#[tokio::test]
async fn missing_credentials_are_reported_and_recovered_from() {
    let world = World::new("creds", &[]).await;
    world.create("needs-secret", json!({"zoneId": ZONE, "hosts": ["abc.test.com"], "mode": "eofreecert", "credentialsRef": {"name": "tencent"}})).await;
    let status = world
        .wait_status("needs-secret", "CredentialsMissing", |s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "CredentialsMissing")
        })
        .await;
    let message = &status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(
        message.contains("tencent") && message.contains("secretId"),
        "{message}"
    );
    assert!(
        world.emulator.calls().is_empty(),
        "no Tencent call without credentials"
    );

    let credentials = |pairs: &[(&str, &str)]| Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("tencent".into()),
            ..Default::default()
        },
        string_data: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };

    // Incomplete: no secretKey.
    world
        .put_secret(credentials(&[("secretId", SECRET_ID)]))
        .await;
    world
        .wait_status(
            "needs-secret",
            "a CredentialsMissing message about the keys",
            |s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Ready"
                        && c.reason == "CredentialsMissing"
                        && c.message.contains("secretKey")
                        && c.message.contains("non-empty")
                })
            },
        )
        .await;
    assert!(world.emulator.calls().is_empty(), "no call with half a key");

    // The SecretId of an account the API does not know: the exact code, and no
    // retry storm (an auth failure waits for the Secret to change).
    const OTHER_ID: &str = "AKIDother000000000000000000000000000";
    world
        .put_secret(credentials(&[
            ("secretId", OTHER_ID),
            ("secretKey", "another-accounts-key"),
        ]))
        .await;
    world
        .wait_status("needs-secret", "AuthFailure.SecretIdNotFound", |s| {
            s.last_error
                .as_ref()
                .is_some_and(|e| e.code == "AuthFailure.SecretIdNotFound")
        })
        .await;
    let tried = |world: &World| {
        world
            .emulator
            .calls()
            .iter()
            .filter(|c| c.secret_id.as_deref() == Some(OTHER_ID))
            .count()
    };
    let before = tried(&world);
    tokio::time::sleep(QUIET).await;
    let during_quiet = tried(&world) - before;
    assert!(
        during_quiet <= 1,
        "{during_quiet} calls with the unknown SecretId in {QUIET:?}: a retry storm"
    );

    // Fixed: it recovers without anyone touching the binding.
    world
        .put_secret(credentials(&[
            ("secretId", SECRET_ID),
            ("secretKey", SECRET_KEY),
        ]))
        .await;
    world.wait_ready("needs-secret").await;
}

#[tokio::test]
async fn retryable_faults_still_converge() {
    let world = World::new("faults", &[]).await;
    // Each transient failure in turn: the binding shows it, then converges once the
    // API recovers, without anyone touching the binding.
    let faults = [
        ("internal", json!({"internalError": 1.0}), "InternalError"),
        ("unavailable", json!({"http503": 1.0}), "InvalidResponse"),
        (
            "busy",
            json!({"actionInProgress": 1.0}),
            "InvalidParameter.ActionInProgress",
        ),
    ];
    for (name, rule, code) in faults {
        world.emulator.with_state(|s| {
            s.faults = serde_json::from_value(json!({"ModifyHostsCertificate": rule})).unwrap()
        });
        world
            .create(
                name,
                json!({"zoneId": ZONE, "hosts": ["abc.test.com"], "mode": "eofreecert"}),
            )
            .await;
        let status = world
            .wait_status(name, code, |s| s.last_error.is_some())
            .await;
        assert_eq!(status.last_error.unwrap().code, code, "{name}");
        world.emulator.with_state(|s| s.faults = Default::default());
        world.wait_ready(name).await;
        world
            .bindings()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
        world.wait_gone(name).await;
        // The next binding must change the host again.
        world.emulator.with_state(|s| {
            s.domains
                .get_mut(&(ZONE.to_string(), "abc.test.com".to_string()))
                .unwrap()
                .config
                .mode = "disable".into()
        });
    }
}

#[tokio::test]
async fn spec_changes_reapply_and_drift_is_repaired() {
    let world = World::new("changes", &["--drift-interval", "1s"]).await;
    world
        .create(
            "site",
            json!({"zoneId": ZONE, "hosts": ["abc.test.com"], "mode": "eofreecert"}),
        )
        .await;
    world.wait_ready("site").await;
    world
        .bindings()
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": ssl_spec(&["abc.test.com", "www.test.com"], CERT)})),
        )
        .await
        .expect("patch");
    world
        .wait_status("site", "the new spec applied", |s| {
            s.observed_generation == Some(2) && condition(s, "Ready") == Some("True")
        })
        .await;
    assert_eq!(world.host_mode("abc.test.com"), "sslcert");
    assert_eq!(world.host_mode("www.test.com"), "sslcert");

    // Someone changes EdgeOne in the console.
    world.emulator.with_state(|s| {
        s.domains
            .get_mut(&(ZONE.to_string(), "www.test.com".to_string()))
            .unwrap()
            .config
            .mode = "disable".into();
    });
    world.wait_event("DriftRepaired").await;
    let start = Instant::now();
    while world.host_mode("www.test.com") != "sslcert" {
        assert!(start.elapsed() < WAIT, "drift not repaired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn deletion_policies() {
    let world = World::new("deletion", &[]).await;
    world
        .create(
            "keep",
            json!({"zoneId": ZONE, "hosts": ["abc.test.com"], "mode": "eofreecert"}),
        )
        .await;
    world.create("off", json!({"zoneId": ZONE, "hosts": ["www.test.com", "api.test.com"], "mode": "eofreecert", "deletionPolicy": "Disable"})).await;
    world.wait_ready("keep").await;
    world.wait_ready("off").await;
    let finalizers = world
        .bindings()
        .get("keep")
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap_or_default();
    assert_eq!(finalizers, ["edgeone.operators.dev/cleanup"]);

    world
        .bindings()
        .delete("keep", &DeleteParams::default())
        .await
        .expect("delete keep");
    world.wait_gone("keep").await;
    assert_eq!(
        world.host_mode("abc.test.com"),
        "eofreecert",
        "Retain leaves EdgeOne as it is"
    );

    // One of the hosts disappears from the zone before the binding is deleted.
    world.emulator.with_state(|s| {
        s.domains
            .remove(&(ZONE.to_string(), "api.test.com".to_string()))
    });
    world
        .bindings()
        .delete("off", &DeleteParams::default())
        .await
        .expect("delete off");
    world.wait_gone("off").await;
    assert_eq!(
        world.host_mode("www.test.com"),
        "disable",
        "Disable turned the certificate off"
    );
    let reasons = world.event_reasons().await;
    assert!(
        reasons.iter().any(|r| r == "CleanupSkipped") && reasons.iter().any(|r| r == "Disabled"),
        "{reasons:?}"
    );
}

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn parse_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {l}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number in: {l}"));
            (key.to_owned(), value)
        })
        .collect()
}
