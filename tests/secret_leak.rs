//! Secret values never leave the operator: it runs at trace level through a scenario
//! that uses every kind of secret it handles (a long-lived key from the environment,
//! temporary credentials with a session token from a `credentialsRef` Secret, a wrong
//! key, a certificate's private key that it uploads), and then its log, the
//! namespace's events, the bindings' status and /metrics are searched for each value,
//! as it is and as the base64 that Kubernetes stores.

mod common;

use common::*;

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta};
use rcgen::{CertificateParams, KeyPair};
use serde_json::json;
use teo_emulator::model::{TempCredential, now_millis};

const TEMP_ID: &str = "AKIDtemp000000000000000000000000000000";
const TEMP_KEY: &str = "tmp-key-2f8d1c9e4b7a6053-must-not-leak";
const TEMP_TOKEN: &str = "session-token-91c3e7aa0d5b4f28-must-not-leak";
const WRONG_KEY: &str = "wrong-key-6b0e2d9f31c84a57-must-not-leak";

fn secret(name: &str, type_: &str, data: &[(&str, &str)]) -> Secret {
    let data: BTreeMap<String, ByteString> = data
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        type_: Some(type_.into()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The value and every form in which it could travel: as is, the base64 of the
/// whole value (a Secret's data in JSON), and each base64 line of a PEM body.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![
        value.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(value),
    ];
    forms.extend(
        value
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_owned),
    );
    forms
}

#[tokio::test]
async fn no_secret_value_reaches_logs_events_status_or_metrics() {
    let mut world = World::new(
        "leak",
        &[
            "--log-level",
            "trace",
            "--log-format",
            "json",
            "--drift-interval",
            "1s",
        ],
    )
    .await;
    // Temporary credentials as STS would issue them, for the demo account.
    world.emulator.with_state(|s| {
        s.temp_credentials.insert(
            TEMP_ID.into(),
            TempCredential {
                secret_key: TEMP_KEY.into(),
                token: TEMP_TOKEN.into(),
                uin: "100000000001".into(),
                expires_at: now_millis() + 3_600_000,
            },
        );
    });
    let key = KeyPair::generate().expect("key");
    let certificate = CertificateParams::new(vec!["abc.test.com".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let key_pem = key.serialize_pem();
    world
        .put_secret(secret(
            "site-tls",
            "kubernetes.io/tls",
            &[("tls.crt", &certificate.pem()), ("tls.key", &key_pem)],
        ))
        .await;
    world
        .put_secret(secret(
            "temporary",
            "Opaque",
            &[
                ("secretId", TEMP_ID),
                ("secretKey", TEMP_KEY),
                ("token", TEMP_TOKEN),
            ],
        ))
        .await;
    world
        .put_secret(secret(
            "wrong",
            "Opaque",
            &[("secretId", SECRET_ID), ("secretKey", WRONG_KEY)],
        ))
        .await;

    // An upload and a bind signed with the temporary credentials and their token.
    world
        .create(
            "uploaded",
            json!({"zoneId": ZONE, "hosts": ["abc.test.com"], "mode": "sslcert",
                   "serverCertificates": [{"secretRef": {"name": "site-tls"}}],
                   "credentialsRef": {"name": "temporary"}}),
        )
        .await;
    // The default credentials from the environment, and a cleanup on deletion.
    world
        .create(
            "defaults",
            json!({"zoneId": ZONE, "hosts": ["api.test.com"], "mode": "eofreecert",
                   "deletionPolicy": "Disable"}),
        )
        .await;
    // A wrong key: Tencent's error goes to status and events.
    world
        .create(
            "refused",
            json!({"zoneId": ZONE, "hosts": ["www.test.com"], "mode": "eofreecert",
                   "credentialsRef": {"name": "wrong"}}),
        )
        .await;
    world.wait_ready("uploaded").await;
    world.wait_ready("defaults").await;
    world.wait_not_ready("refused", "AuthFailure").await;
    // A few drift checks, then the cleanup.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    world
        .bindings()
        .delete("defaults", &DeleteParams::default())
        .await
        .expect("delete");
    world.wait_gone("defaults").await;
    let uploads = world.calls("UploadCertificate");
    assert_eq!(uploads.len(), 1, "the scenario uploaded the key");

    let events: Api<Event> = Api::namespaced(world.client.clone(), &world.namespace);
    let events = serde_json::to_string(&events.list(&Default::default()).await.expect("events"))
        .expect("json");
    let bindings = serde_json::to_string(
        &world
            .bindings()
            .list(&Default::default())
            .await
            .expect("bindings"),
    )
    .expect("json");
    let metrics = world.metrics().await;
    world.operator.kill();
    let log = std::fs::read_to_string(&world.log).expect("operator log");

    // The outputs are what the search assumes they are: a trace-level log of the whole
    // scenario, and events and status that describe it.
    assert!(
        log.contains(r#""level":"TRACE""#),
        "not a trace log: {}",
        world.log.display()
    );
    for (output, what, expected) in [
        (&log, "log", "UploadCertificate"),
        (&log, "log", "AuthFailure"),
        (&events, "events", "AuthFailure"),
        (&bindings, "status", "AuthFailure"),
        (&metrics, "metrics", "UploadCertificate"),
    ] {
        assert!(
            output.contains(expected),
            "{what} does not mention {expected}"
        );
    }

    let secrets = [
        ("SecretKey from the environment", SECRET_KEY.to_owned()),
        ("temporary SecretKey", TEMP_KEY.to_owned()),
        ("session token", TEMP_TOKEN.to_owned()),
        ("wrong SecretKey", WRONG_KEY.to_owned()),
        ("certificate private key", key_pem),
    ];
    let outputs = [
        ("operator log", &log),
        ("events", &events),
        ("bindings and status", &bindings),
        ("metrics", &metrics),
    ];
    let mut leaks = Vec::new();
    for (secret, value) in &secrets {
        for form in forms(value) {
            for (output, text) in outputs {
                if text.contains(&form) {
                    leaks.push(format!("{secret} ({form:.24}…) in the {output}"));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secret values leaked: {leaks:#?}; log: {}",
        world.log.display()
    );
}
