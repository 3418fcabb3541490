//! End to end: certificates taken from Kubernetes Secrets (`secretRef`), the way
//! cert-manager writes them, against the real kube-apiserver (the shared test control
//! plane) and the Tencent Cloud API emulator. Each test has its own namespace, emulator
//! and operator process watching only that namespace (the `World` of tests/operator.rs).
//!
//! The certificates are issued here with rcgen: a root CA, an intermediate CA (the
//! cert-manager `Issuer`) and leafs for hosts of the emulator's seeded zone. A Secret's
//! `tls.crt` is the leaf followed by the intermediate, `tls.key` the leaf's PKCS#8 key
//! and `ca.crt` the root, as cert-manager's CA issuer writes them.

mod common;

use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgeone_cert_operator::api::{CertificateStatus, EdgeOneCertificateBindingStatus};
use edgeone_cert_operator::certs::{MAX_CHAIN_CERTIFICATES, MAX_PEM_BYTES};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData, SignatureAlgorithm,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use teo_emulator::CallRecord;

/// A server certificate seeded in the emulator, covering abc.test.com and www.test.com.
const SEEDED_CERT: &str = "cert-244ffgv7m17xw";
/// A CA certificate seeded in the emulator.
const SEEDED_CA: &str = "J2JqATrt";
const DAY: i64 = 86_400;
/// The calls that change Tencent Cloud's certificates or hosts.
const CHANGES: [&str; 3] = [
    "UploadCertificate",
    "ModifyHostsCertificate",
    "DeleteCertificate",
];

// ---------------------------------------------------------------------------------------
// The world: control plane, namespace, emulator, operator (as in tests/operator.rs).
// ---------------------------------------------------------------------------------------

/// A binding in mode sslcert serving the certificate of the Secret `secret`.
fn secret_spec(hosts: &[&str], secret: &str) -> Value {
    json!({"zoneId": ZONE, "hosts": hosts, "mode": "sslcert",
           "serverCertificates": [{"secretRef": {"name": secret}}]})
}

fn fingerprints(status: &EdgeOneCertificateBindingStatus) -> Vec<Option<&str>> {
    status
        .certificates
        .iter()
        .map(|c| c.fingerprint_sha256.as_deref())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Certificates and cert-manager style Secrets.
// ---------------------------------------------------------------------------------------

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Sets the validity of `params` to whole seconds since the epoch.
fn set_validity(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(not_before as u64);
    params.not_after = epoch + Duration::from_secs(not_after as u64);
}

fn fingerprint_of(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The base64 body of a single-certificate PEM, without armour or whitespace, to find a
/// certificate in whatever PEM text the operator sends (line breaks may differ).
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn compact(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A certificate authority; the root's `chain` is empty, an intermediate's is its own
/// certificate followed by its parents' (the root itself is not part of a chain).
struct TestCa {
    cert_pem: String,
    /// Lower-case hex SHA-256 of the CA certificate's DER.
    fingerprint: String,
    key_pem: String,
    chain: String,
    root_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(common_name: &str, names: &[&str]) -> CertificateParams {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("CA params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "edgeone-cert-operator tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let now = now_unix();
    set_validity(&mut params, now - DAY, now + 3650 * DAY);
    params
}

impl TestCa {
    /// A self-signed root CA. `names` are DNS SANs (a CA normally has none).
    fn root(common_name: &str, names: &[&str]) -> TestCa {
        let params = ca_params(common_name, names);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            cert_pem: cert.pem(),
            fingerprint: fingerprint_of(cert.der()),
            key_pem: key.serialize_pem(),
            chain: String::new(),
            root_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one.
    fn intermediate(&self, common_name: &str) -> TestCa {
        let mut params = ca_params(common_name, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("intermediate key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("intermediate CA");
        TestCa {
            cert_pem: cert.pem(),
            fingerprint: fingerprint_of(cert.der()),
            key_pem: key.serialize_pem(),
            chain: format!("{}{}", cert.pem(), self.chain),
            root_pem: self.root_pem.clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` valid from `not_before` to `not_after` (seconds
    /// since the epoch), with a fresh ECDSA P-256 key.
    fn issue_between(&self, names: &[&str], not_before: i64, not_after: i64) -> Issued {
        let key = KeyPair::generate().expect("leaf key");
        self.issue_for_key(names, not_before, not_after, &key, key.serialize_pem())
    }

    /// A server certificate for `names` with `public_key`, valid from a day ago for 90
    /// days; `key_pem` goes into `tls.key` as it is.
    fn issue_with_key(
        &self,
        names: &[&str],
        public_key: &impl PublicKeyData,
        key_pem: String,
    ) -> Issued {
        let now = now_unix();
        self.issue_for_key(names, now - DAY, now + 90 * DAY, public_key, key_pem)
    }

    fn issue_for_key(
        &self,
        names: &[&str],
        not_before: i64,
        not_after: i64,
        public_key: &impl PublicKeyData,
        key_pem: String,
    ) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, not_before, not_after);
        let cert = params.signed_by(public_key, &self.issuer).expect("leaf");
        Issued {
            names: names.iter().map(|n| n.to_string()).collect(),
            leaf_pem: cert.pem(),
            chain_pem: format!("{}{}", cert.pem(), self.chain),
            key_pem,
            ca_pem: self.root_pem.clone(),
            fingerprint: fingerprint_of(cert.der()),
            not_after,
        }
    }

    /// A server certificate for `names` valid from a day ago for 90 days.
    fn issue(&self, names: &[&str]) -> Issued {
        let now = now_unix();
        self.issue_between(names, now - DAY, now + 90 * DAY)
    }
}

/// A leaf certificate as cert-manager stores it, plus what the tests check it against.
struct Issued {
    names: Vec<String>,
    leaf_pem: String,
    /// `tls.crt`: the leaf followed by the intermediate.
    chain_pem: String,
    /// `tls.key`: PKCS#8 PEM.
    key_pem: String,
    /// `ca.crt`: the root.
    ca_pem: String,
    /// Lower-case hex SHA-256 of the leaf's DER.
    fingerprint: String,
    /// notAfter, seconds since the epoch.
    not_after: i64,
}

/// A Secret of type kubernetes.io/tls with cert-manager's keys and annotations.
fn tls_secret(name: &str, crt: &str, key: &str, ca: &str, names: &[&str]) -> Secret {
    let data: BTreeMap<String, ByteString> = [("tls.crt", crt), ("tls.key", key), ("ca.crt", ca)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let certificate_name = name.strip_suffix("-tls").unwrap_or(name);
    let annotations: BTreeMap<String, String> = [
        ("cert-manager.io/certificate-name", certificate_name),
        ("cert-manager.io/issuer-name", "test-ca"),
        ("cert-manager.io/issuer-kind", "Issuer"),
        ("cert-manager.io/issuer-group", "cert-manager.io"),
        (
            "cert-manager.io/common-name",
            names.first().copied().unwrap_or(""),
        ),
        ("cert-manager.io/alt-names", &names.join(",")),
        ("cert-manager.io/ip-sans", ""),
        ("cert-manager.io/uri-sans", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(annotations),
            labels: Some(
                [(
                    "controller.cert-manager.io/fao".to_string(),
                    "true".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The Secret cert-manager writes for an issued certificate.
fn issued_secret(name: &str, issued: &Issued) -> Secret {
    let names: Vec<&str> = issued.names.iter().map(String::as_str).collect();
    tls_secret(
        name,
        &issued.chain_pem,
        &issued.key_pem,
        &issued.ca_pem,
        &names,
    )
}

/// `secret` with `key` holding `bytes` (which need not be text).
fn with_data(mut secret: Secret, key: &str, bytes: &[u8]) -> Secret {
    secret
        .data
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_string(), ByteString(bytes.to_vec()));
    secret
}

/// Deterministic binary noise with bytes of every value (an LCG).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

/// An RSA public key with a made-up 1024-bit modulus and exponent 65537: enough for a
/// certificate that states a short RSA key, which ring (rcgen's backend) cannot
/// generate.
struct ShortRsaKey(Vec<u8>);

impl ShortRsaKey {
    fn rsa_1024() -> Self {
        // Top bit set, so DER needs a sign byte; odd, as a modulus is.
        let mut integer = vec![0x00, 0xc5];
        integer.extend([0xa7; 127]);
        let mut body = vec![0x02, 0x81, integer.len() as u8];
        body.extend(&integer);
        body.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut der = vec![0x30, 0x81, body.len() as u8];
        der.extend(body);
        ShortRsaKey(der)
    }
}

impl PublicKeyData for ShortRsaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

// ---------------------------------------------------------------------------------------
// Checks shared by the tests.
// ---------------------------------------------------------------------------------------

/// No certificate was uploaded and no host modified, and none is within [`QUIET`].
async fn assert_nothing_sent(world: &World, why: &str) {
    let uploads = world.calls("UploadCertificate");
    let modifies = world.calls("ModifyHostsCertificate");
    assert!(
        uploads.is_empty() && modifies.is_empty(),
        "{why}: uploads: {uploads:#?}; modifies: {modifies:#?}"
    );
    world
        .assert_no_new_calls(&["UploadCertificate", "ModifyHostsCertificate"], why)
        .await;
}

/// The UploadCertificate calls whose certificate text carries this leaf.
fn uploads_of(world: &World, leaf_pem: &str) -> Vec<CallRecord> {
    let body = pem_body(leaf_pem);
    world
        .calls("UploadCertificate")
        .into_iter()
        .filter(|c| {
            c.request["CertificatePublicKey"]
                .as_str()
                .is_some_and(|pk| compact(pk).contains(&body))
        })
        .collect()
}

/// The status entry of a certificate uploaded from `secret` holding `issued`.
fn assert_certificate_status(
    entry: &CertificateStatus,
    cert_id: &str,
    secret: &str,
    issued: &Issued,
) {
    assert_eq!(entry.cert_id, cert_id, "{entry:#?}");
    assert_eq!(entry.source, format!("secret/{secret}"), "{entry:#?}");
    assert_eq!(
        entry.fingerprint_sha256.as_deref(),
        Some(issued.fingerprint.as_str()),
        "{entry:#?}"
    );
    let not_after: jiff::Timestamp = entry
        .not_after
        .as_deref()
        .unwrap_or_else(|| panic!("notAfter missing: {entry:#?}"))
        .parse()
        .unwrap_or_else(|e| panic!("notAfter is not RFC 3339: {e}: {entry:#?}"));
    assert_eq!(not_after.as_second(), issued.not_after, "{entry:#?}");
    let names: BTreeSet<&str> = entry.subject_names.iter().map(String::as_str).collect();
    let expected: BTreeSet<&str> = issued.names.iter().map(String::as_str).collect();
    assert_eq!(names, expected, "{entry:#?}");
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn secret_certificate_is_uploaded_once_and_bound() {
    // Re-reconciles every second, to show they upload nothing again.
    let world = World::new("secret-upload", &["--drift-interval", "1s"]).await;
    let root = TestCa::root("Test Root CA", &[]);
    let ca = root.intermediate("Test Issuing CA");
    let hosts = ["abc.test.com", "www.test.com"];
    let issued = ca.issue(&hosts);
    world.put_secret(issued_secret("web-tls", &issued)).await;
    world.create("web", secret_spec(&hosts, "web-tls")).await;
    let status = world.wait_ready("web").await;

    // One upload: the leaf with its chain, as a server certificate, not repeatable, named
    // after the namespace, the binding and the fingerprint.
    let uploads = world.calls("UploadCertificate");
    assert_eq!(uploads.len(), 1, "{uploads:#?}");
    let upload = &uploads[0];
    assert_eq!(upload.outcome, "Success", "{upload:#?}");
    let request = &upload.request;
    assert_eq!(request["CertificateType"], "SVR", "{request:#}");
    assert_eq!(request["Repeatable"], false, "{request:#}");
    assert_eq!(
        request["CertificatePrivateKey"], "<redacted>",
        "the key is sent (the emulator's log redacts it): {request:#}"
    );
    let sent = compact(
        request["CertificatePublicKey"]
            .as_str()
            .expect("public key"),
    );
    let leaf_at = sent.find(&pem_body(&issued.leaf_pem));
    let intermediate_at = sent.find(&pem_body(&ca.cert_pem));
    assert!(
        leaf_at.is_some() && intermediate_at.is_some() && leaf_at < intermediate_at,
        "the leaf, then its chain: {request:#}"
    );
    let alias = request["Alias"].as_str().expect("Alias");
    for part in [world.namespace.as_str(), "web", &issued.fingerprint[..12]] {
        assert!(alias.contains(part), "alias {alias:?} lacks {part:?}");
    }

    // The emulator holds it under the id in status, bound to both hosts.
    let ids = world.uploaded_with_fingerprint(&issued.fingerprint);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];
    let cert_type = world
        .emulator
        .with_state(|s| s.certificates[id].cert_type.clone());
    assert_eq!(cert_type, "SVR");
    assert_eq!(status.certificates.len(), 1, "{status:#?}");
    assert_certificate_status(&status.certificates[0], id, "web-tls", &issued);
    for host in hosts {
        assert_eq!(world.host_server_cert_ids(host), [id.as_str()], "{host}");
        let modifies = world.modifies_of(host);
        assert!(!modifies.is_empty(), "{host} was never modified");
        for modify in modifies {
            assert_eq!(modify.request["Mode"], "sslcert", "{modify:#?}");
            assert_eq!(
                modify.request["ServerCertInfo"],
                json!([{"CertId": id}]),
                "{modify:#?}"
            );
        }
    }

    // Re-reconciles (drift checks every second) upload and modify nothing.
    let before = world.emulator.calls().len();
    world
        .assert_no_new_calls(&CHANGES, "re-reconciles of a Ready binding")
        .await;
    assert!(
        world.emulator.calls().len() > before,
        "no re-reconcile happened in {QUIET:?} with --drift-interval 1s, so the check above proves nothing"
    );

    // cert-manager touching the Secret without a new certificate (an annotation, a
    // label) is no reason to upload again.
    let mut touched = issued_secret("web-tls", &issued);
    touched
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert("cert-manager.io/revision".into(), "2".into());
    world.put_secret(touched).await;
    world
        .assert_no_new_calls(&CHANGES, "a Secret update that keeps the certificate")
        .await;
    assert_eq!(world.calls("UploadCertificate").len(), 1);
    let status = world.wait_ready("web").await;
    assert_certificate_status(&status.certificates[0], id, "web-tls", &issued);
}

#[tokio::test]
async fn renewed_secret_is_uploaded_rebound_and_the_old_upload_deleted() {
    let world = World::new("secret-renewal", &[]).await;
    let root = TestCa::root("Test Root CA", &[]);
    let ca = root.intermediate("Test Issuing CA");
    let hosts = ["abc.test.com", "www.test.com"];
    let first = ca.issue(&hosts);
    world.put_secret(issued_secret("web-tls", &first)).await;
    world.create("web", secret_spec(&hosts, "web-tls")).await;
    let status = world.wait_ready("web").await;
    assert_eq!(
        fingerprints(&status),
        [Some(first.fingerprint.as_str())],
        "{status:#?}"
    );
    let old_id = status.certificates[0].cert_id.clone();
    for host in hosts {
        assert_eq!(
            world.host_server_cert_ids(host),
            [old_id.as_str()],
            "{host}"
        );
    }

    // cert-manager renews: a new key and certificate for the same names, valid longer.
    let now = now_unix();
    let second = ca.issue_between(&hosts, now - DAY / 2, now + 120 * DAY);
    assert_ne!(first.fingerprint, second.fingerprint);
    world.put_secret(issued_secret("web-tls", &second)).await;

    let status = world
        .wait_status("web", "the renewed certificate in status, Ready", |s| {
            condition(s, "Ready") == Some("True")
                && fingerprints(s) == [Some(second.fingerprint.as_str())]
        })
        .await;
    let new_id = status.certificates[0].cert_id.clone();
    assert_ne!(new_id, old_id, "a new certificate gets a new id");
    assert_certificate_status(&status.certificates[0], &new_id, "web-tls", &second);
    assert_eq!(
        world.uploaded_with_fingerprint(&second.fingerprint),
        [new_id.as_str()]
    );
    // Every host serves the new certificate.
    world
        .wait_emulator("both hosts bound to the new certificate", |s| {
            hosts.iter().all(|h| {
                s.domains[&(ZONE.to_string(), h.to_string())]
                    .config
                    .server_cert_ids
                    == [new_id.as_str()]
            })
        })
        .await;
    // The replaced upload is deleted once EdgeOne no longer uses it.
    world
        .wait_emulator("the replaced upload deleted", |s| {
            !s.certificates.contains_key(&old_id)
        })
        .await;

    // Exactly one upload per fingerprint.
    let uploads = world.calls("UploadCertificate");
    assert_eq!(uploads.len(), 2, "{uploads:#?}");
    assert_eq!(uploads_of(&world, &first.leaf_pem).len(), 1, "{uploads:#?}");
    assert_eq!(
        uploads_of(&world, &second.leaf_pem).len(),
        1,
        "{uploads:#?}"
    );
    for upload in &uploads {
        assert_eq!(upload.request["Repeatable"], false, "{upload:#?}");
    }
    let new_upload = &uploads_of(&world, &second.leaf_pem)[0];
    let alias = new_upload.request["Alias"].as_str().unwrap_or_default();
    assert!(
        alias.contains(&second.fingerprint[..12]),
        "the new upload's alias {alias:?} names its fingerprint"
    );

    // The deletion came after EdgeOne accepted the new certificate for the hosts, and
    // concerned only the replaced upload.
    let calls = world.emulator.calls();
    let rebound = calls
        .iter()
        .position(|c| {
            c.action == "ModifyHostsCertificate"
                && c.outcome == "Success"
                && c.request["ServerCertInfo"] == json!([{"CertId": new_id}])
        })
        .unwrap_or_else(|| panic!("no successful ModifyHostsCertificate to {new_id}: {calls:#?}"));
    let deletes: Vec<(usize, &CallRecord)> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.action == "DeleteCertificate")
        .collect();
    assert!(!deletes.is_empty(), "no DeleteCertificate: {calls:#?}");
    for (at, delete) in &deletes {
        assert_eq!(
            delete.request["CertificateId"],
            old_id.as_str(),
            "{delete:#?}"
        );
        assert!(
            *at > rebound,
            "DeleteCertificate before the hosts were rebound: {calls:#?}"
        );
    }
    assert!(
        deletes.iter().any(|(_, d)| d.outcome == "Success"),
        "{deletes:#?}"
    );
    // Certificates the operator did not upload stay.
    world.emulator.with_state(|s| {
        assert!(s.certificates.contains_key(SEEDED_CERT));
        assert!(s.certificates.contains_key(SEEDED_CA));
        assert!(s.certificates.contains_key(&new_id));
    });

    // And it stays that way.
    world
        .assert_no_new_calls(&CHANGES, "after the renewal settled")
        .await;
    let status = world.wait_ready("web").await;
    assert_eq!(
        fingerprints(&status),
        [Some(second.fingerprint.as_str())],
        "{status:#?}"
    );
}

#[tokio::test]
async fn two_bindings_sharing_a_secret_share_one_upload() {
    let world = World::new("secret-shared", &[]).await;
    let root = TestCa::root("Test Root CA", &[]);
    let ca = root.intermediate("Test Issuing CA");
    let issued = ca.issue(&["abc.test.com", "www.test.com"]);
    world.put_secret(issued_secret("shared-tls", &issued)).await;
    world
        .create("abc", secret_spec(&["abc.test.com"], "shared-tls"))
        .await;
    world
        .create("www", secret_spec(&["www.test.com"], "shared-tls"))
        .await;
    let abc = world.wait_ready("abc").await;
    let www = world.wait_ready("www").await;

    let ids = world.uploaded_with_fingerprint(&issued.fingerprint);
    assert_eq!(ids.len(), 1, "one certificate in Tencent Cloud: {ids:?}");
    let id = &ids[0];
    for (name, status) in [("abc", &abc), ("www", &www)] {
        assert_eq!(status.certificates.len(), 1, "{name}: {status:#?}");
        assert_certificate_status(&status.certificates[0], id, "shared-tls", &issued);
    }
    assert_eq!(world.host_server_cert_ids("abc.test.com"), [id.as_str()]);
    assert_eq!(world.host_server_cert_ids("www.test.com"), [id.as_str()]);
    // Whoever comes second at most asks again and gets RepeatCertId back.
    let uploads = world.calls("UploadCertificate");
    assert!(
        !uploads.is_empty() && uploads.len() <= 2,
        "at most one UploadCertificate per binding: {uploads:#?}"
    );
    for upload in &uploads {
        assert_eq!(upload.request["Repeatable"], false, "{upload:#?}");
    }
    assert!(world.calls("DeleteCertificate").is_empty());

    world
        .assert_no_new_calls(&CHANGES, "two Ready bindings on one Secret")
        .await;
}

#[tokio::test]
async fn invalid_secrets_are_reported_and_nothing_is_uploaded() {
    let world = World::new("secret-invalid", &[]).await;
    let root = TestCa::root("Test Root CA", &[]);
    let ca = root.intermediate("Test Issuing CA");
    let names = ["abc.test.com", "www.test.com"];
    let good = ca.issue(&names);

    // Each Secret has exactly one problem.
    // tls.crt is not PEM.
    world
        .put_secret(tls_secret(
            "garbage-tls",
            "this is not a certificate\n",
            &good.key_pem,
            &good.ca_pem,
            &names,
        ))
        .await;
    // The key of another certificate.
    let other = ca.issue(&names);
    world
        .put_secret(tls_secret(
            "mismatch-tls",
            &good.chain_pem,
            &other.key_pem,
            &good.ca_pem,
            &names,
        ))
        .await;
    // Expired ten days ago.
    let now = now_unix();
    let expired = ca.issue_between(&names, now - 100 * DAY, now - 10 * DAY);
    world
        .put_secret(issued_secret("expired-tls", &expired))
        .await;
    // Valid, but for other hosts than the binding's.
    world
        .put_secret(issued_secret("elsewhere-tls", &good))
        .await;
    // A CA certificate (with its key and even a name that covers the host) as a server
    // certificate.
    let ca_as_server = TestCa::root("abc.test.com", &["abc.test.com"]);
    world
        .put_secret(tls_secret(
            "ca-tls",
            &ca_as_server.cert_pem,
            &ca_as_server.key_pem,
            &ca_as_server.cert_pem,
            &["abc.test.com"],
        ))
        .await;

    let cases: [(&str, &str, &str, &str, &[&str]); 6] = [
        // (binding, Secret, host, reason, message contains one of)
        (
            "missing",
            "absent-tls",
            "abc.test.com",
            "SecretNotFound",
            &["absent-tls"],
        ),
        (
            "garbage",
            "garbage-tls",
            "abc.test.com",
            "CertificateInvalid",
            &["PEM", "pem", "parse", "Parse"],
        ),
        (
            "mismatch",
            "mismatch-tls",
            "www.test.com",
            "CertificateInvalid",
            &["does not match"],
        ),
        (
            "expired",
            "expired-tls",
            "abc.test.com",
            "CertificateInvalid",
            &["expired"],
        ),
        (
            "uncovered",
            "elsewhere-tls",
            "api.test.com",
            "CertificateInvalid",
            &["api.test.com"],
        ),
        (
            "ca",
            "ca-tls",
            "abc.test.com",
            "CertificateInvalid",
            &["CA"],
        ),
    ];
    for (binding, secret, host, _, _) in &cases {
        world.create(binding, secret_spec(&[host], secret)).await;
    }
    for (binding, secret, _, reason, words) in &cases {
        let ready = world.wait_not_ready(binding, reason).await;
        assert!(
            words.iter().any(|w| ready.message.contains(w)),
            "{binding} ({secret}): the message {:?} should mention one of {words:?}",
            ready.message
        );
        // A problem with a Secret's content names the Secret.
        if *reason == "CertificateInvalid" && *binding != "uncovered" {
            assert!(
                ready.message.contains(secret),
                "{binding}: the message {:?} should name the Secret {secret}",
                ready.message
            );
        }
    }

    // None of them reached Tencent Cloud with a certificate, then or later.
    assert_nothing_sent(&world, "bindings with invalid Secrets").await;
    for (binding, _, _, reason, _) in &cases {
        world.wait_not_ready(binding, reason).await;
    }
    world.emulator.with_state(|s| {
        assert_eq!(s.certificates.len(), 2, "only the seeded certificates");
    });
}

#[tokio::test]
async fn hostile_secrets_are_refused_before_any_tencent_call() {
    let world = World::new("secret-hostile", &[]).await;
    let root = TestCa::root("Test Root CA", &[]);
    let ca = root.intermediate("Test Issuing CA");
    let names = ["abc.test.com", "www.test.com"];
    let good = ca.issue(&names);
    let good_secret = |name: &str| issued_secret(name, &good);

    // Each Secret has exactly one problem; the rest of it is what cert-manager writes.
    // Not of type kubernetes.io/tls.
    world
        .put_secret(Secret {
            type_: Some("Opaque".into()),
            ..good_secret("opaque-tls")
        })
        .await;
    // tls.crt or tls.key empty (the API server insists both keys exist in a
    // kubernetes.io/tls Secret, not that they hold anything).
    world
        .put_secret(with_data(good_secret("no-crt-tls"), "tls.crt", b""))
        .await;
    world
        .put_secret(with_data(good_secret("no-key-tls"), "tls.key", b"\n"))
        .await;
    // Binary garbage (not even UTF-8) as the certificate, and as the key.
    world
        .put_secret(with_data(
            good_secret("noise-crt-tls"),
            "tls.crt",
            &noise(16 * 1024),
        ))
        .await;
    world
        .put_secret(with_data(
            good_secret("noise-key-tls"),
            "tls.key",
            &noise(16 * 1024),
        ))
        .await;
    // A PEM bundle of 1 MiB, all a Secret can hold: the chain over and over.
    let budget = 1024 * 1024 - good.key_pem.len();
    let huge = good.chain_pem.repeat(budget / good.chain_pem.len());
    assert!(huge.len() > 1000 * 1024, "{}", huge.len());
    world
        .put_secret(tls_secret("huge-tls", &huge, &good.key_pem, "", &names))
        .await;
    // A chain of 50 certificates: a leaf under 49 intermediates.
    let mut deep = root.intermediate("Intermediate 1");
    for n in 2..=49 {
        deep = deep.intermediate(&format!("Intermediate {n}"));
    }
    let long = deep.issue(&names);
    assert_eq!(long.chain_pem.matches("BEGIN CERTIFICATE").count(), 50);
    world
        .put_secret(issued_secret("long-chain-tls", &long))
        .await;
    // The leaf whole, its intermediate cut off halfway.
    let cut = format!("{}{}", good.leaf_pem, &ca.cert_pem[..ca.cert_pem.len() / 2]);
    world
        .put_secret(tls_secret(
            "truncated-tls",
            &cut,
            &good.key_pem,
            &good.ca_pem,
            &names,
        ))
        .await;
    // Encrypted keys: PKCS#8, and the traditional OpenSSL kind.
    let pkcs8_encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n\
        MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhDkQ6wLLqcQAICCAAw\n\
        -----END ENCRYPTED PRIVATE KEY-----\n";
    world
        .put_secret(with_data(
            good_secret("pkcs8-encrypted-tls"),
            "tls.key",
            pkcs8_encrypted.as_bytes(),
        ))
        .await;
    let legacy_encrypted = "-----BEGIN RSA PRIVATE KEY-----\n\
        Proc-Type: 4,ENCRYPTED\n\
        DEK-Info: AES-256-CBC,2F1B3E1D0C6A4B5E8F9A0B1C2D3E4F50\n\
        \n\
        MIIEowIBAAKCAQEAv3o0d1l8mYkP8uNdw0m2kQ6wLLqcQAICCAAwDAYIKoZIhvcN\n\
        -----END RSA PRIVATE KEY-----\n";
    world
        .put_secret(with_data(
            good_secret("legacy-encrypted-tls"),
            "tls.key",
            legacy_encrypted.as_bytes(),
        ))
        .await;
    // An Ed25519 certificate and key, which EdgeOne does not take.
    let ed_key = KeyPair::generate_for(&PKCS_ED25519).expect("Ed25519 key");
    let ed = ca.issue_with_key(&names, &ed_key, ed_key.serialize_pem());
    world.put_secret(issued_secret("ed25519-tls", &ed)).await;
    // A certificate for a 1024-bit RSA key (the key size is refused before the key
    // itself is looked at).
    let short = ca.issue_with_key(&names, &ShortRsaKey::rsa_1024(), good.key_pem.clone());
    world.put_secret(issued_secret("rsa1024-tls", &short)).await;

    let too_large = format!("limit of {MAX_PEM_BYTES} bytes");
    let too_long = format!("limit of {MAX_CHAIN_CERTIFICATES}");
    let cases: [(&str, &str, &str, &[&str]); 13] = [
        // (binding, Secret, host, the message contains all of)
        (
            "opaque",
            "opaque-tls",
            "abc.test.com",
            &["\"Opaque\"", "kubernetes.io/tls"],
        ),
        (
            "no-crt",
            "no-crt-tls",
            "abc.test.com",
            &["has no tls.crt", "PEM certificate chain"],
        ),
        (
            "no-key",
            "no-key-tls",
            "www.test.com",
            &["has no tls.key", "PEM private key"],
        ),
        (
            "noise-crt",
            "noise-crt-tls",
            "abc.test.com",
            &["no PEM CERTIFICATE block"],
        ),
        (
            "noise-key",
            "noise-key-tls",
            "www.test.com",
            &["no PEM private key block"],
        ),
        (
            "huge",
            "huge-tls",
            "abc.test.com",
            &["certificate chain is", &too_large],
        ),
        (
            "long-chain",
            "long-chain-tls",
            "www.test.com",
            &["50 certificates", &too_long],
        ),
        (
            "truncated",
            "truncated-tls",
            "abc.test.com",
            &["block 2 has no END line", "truncated"],
        ),
        (
            "pkcs8-encrypted",
            "pkcs8-encrypted-tls",
            "www.test.com",
            &["encrypted", "unencrypted"],
        ),
        (
            "legacy-encrypted",
            "legacy-encrypted-tls",
            "abc.test.com",
            &["encrypted", "unencrypted"],
        ),
        (
            "ed25519",
            "ed25519-tls",
            "www.test.com",
            &["Ed25519", "RSA and ECC"],
        ),
        (
            "rsa1024",
            "rsa1024-tls",
            "abc.test.com",
            &["RSA key has 1024 bits", "2048"],
        ),
        // The control: the same certificate, unchanged, under a name of its own is
        // refused only because this binding asks for a host it does not cover.
        ("uncovered", "good-tls", "api.test.com", &["api.test.com"]),
    ];
    world.put_secret(good_secret("good-tls")).await;
    for (binding, secret, host, _) in &cases {
        world.create(binding, secret_spec(&[host], secret)).await;
    }
    let namespace = &world.namespace;
    for (binding, secret, _, words) in &cases {
        let ready = world.wait_not_ready(binding, "CertificateInvalid").await;
        for word in *words {
            assert!(
                ready.message.contains(word),
                "{binding} ({secret}): the message {:?} should say {word:?}",
                ready.message
            );
        }
        if *binding != "uncovered" {
            assert!(
                ready
                    .message
                    .starts_with(&format!("Secret {namespace}/{secret}: ")),
                "{binding}: the message {:?} should name the Secret {namespace}/{secret}",
                ready.message
            );
        }
    }

    // None of them reached Tencent Cloud with a certificate, then or later, and the
    // operator is still there (a panic in a reconcile would not be).
    assert_nothing_sent(&world, "bindings with hostile Secrets").await;
    for (binding, _, _, _) in &cases {
        world.wait_not_ready(binding, "CertificateInvalid").await;
    }
    world.emulator.with_state(|s| {
        assert_eq!(s.certificates.len(), 2, "only the seeded certificates");
    });
    let log = std::fs::read_to_string(&world.log).expect("operator log");
    assert!(
        !log.contains("panicked"),
        "the operator panicked; see {}",
        world.log.display()
    );
}

#[tokio::test]
async fn a_missing_or_broken_secret_recovers_once_fixed() {
    let world = World::new("secret-recover", &[]).await;
    let root = TestCa::root("Test Root CA", &[]);
    let ca = root.intermediate("Test Issuing CA");
    let names = ["abc.test.com", "www.test.com"];
    world
        .create("late", secret_spec(&["abc.test.com"], "late-tls"))
        .await;
    let first = ca.issue(&names);
    world
        .put_secret(tls_secret(
            "broken-tls",
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
            &first.key_pem,
            &first.ca_pem,
            &names,
        ))
        .await;
    world
        .create("broken", secret_spec(&["www.test.com"], "broken-tls"))
        .await;
    let late = world.wait_not_ready("late", "SecretNotFound").await;
    assert!(late.message.contains("late-tls"), "{}", late.message);
    world.wait_not_ready("broken", "CertificateInvalid").await;
    assert!(world.calls("UploadCertificate").is_empty());
    assert!(world.calls("ModifyHostsCertificate").is_empty());

    // The Secret appears: the binding recovers without being touched.
    let late_cert = ca.issue(&names);
    world
        .put_secret(issued_secret("late-tls", &late_cert))
        .await;
    let status = world.wait_ready("late").await;
    assert_eq!(
        fingerprints(&status),
        [Some(late_cert.fingerprint.as_str())],
        "{status:#?}"
    );
    assert_eq!(uploads_of(&world, &late_cert.leaf_pem).len(), 1);

    // The Secret is fixed: likewise.
    let fixed = ca.issue(&names);
    world.put_secret(issued_secret("broken-tls", &fixed)).await;
    let status = world.wait_ready("broken").await;
    assert_eq!(
        fingerprints(&status),
        [Some(fixed.fingerprint.as_str())],
        "{status:#?}"
    );
    assert_eq!(uploads_of(&world, &fixed.leaf_pem).len(), 1);
    assert_eq!(world.calls("UploadCertificate").len(), 2);
    let late_id = world.uploaded_with_fingerprint(&late_cert.fingerprint);
    let fixed_id = world.uploaded_with_fingerprint(&fixed.fingerprint);
    assert_eq!(world.host_server_cert_ids("abc.test.com"), late_id);
    assert_eq!(world.host_server_cert_ids("www.test.com"), fixed_id);
}

#[tokio::test]
async fn client_ca_from_a_secret_turns_on_edge_mtls() {
    let world = World::new("secret-client-ca", &[]).await;
    // cert-manager's Secret for a CA Certificate (isCA: true): the CA is tls.crt and,
    // being self-signed, ca.crt too.
    let client_ca = TestCa::root("Test Client CA", &[]);
    world
        .put_secret(tls_secret(
            "client-ca",
            &client_ca.cert_pem,
            &client_ca.key_pem,
            &client_ca.cert_pem,
            &[],
        ))
        .await;
    let ca_fingerprint = client_ca.fingerprint.clone();
    world
        .create(
            "mtls",
            json!({"zoneId": ZONE, "hosts": ["www.test.com"], "mode": "sslcert",
                   "serverCertificates": [{"certId": SEEDED_CERT}],
                   "clientAuthentication": {"enabled": true,
                       "caCertificates": [{"secretRef": {"name": "client-ca", "key": "ca.crt"}}]}}),
        )
        .await;
    let status = world.wait_ready("mtls").await;

    // Uploaded once, as a CA certificate, without any private key.
    let uploads = world.calls("UploadCertificate");
    assert_eq!(uploads.len(), 1, "{uploads:#?}");
    let request = &uploads[0].request;
    assert_eq!(request["CertificateType"], "CA", "{request:#}");
    assert!(
        request.get("CertificatePrivateKey").is_none(),
        "a CA's key never leaves the cluster: {request:#}"
    );
    assert!(
        compact(request["CertificatePublicKey"].as_str().unwrap_or_default())
            .contains(&pem_body(&client_ca.cert_pem)),
        "{request:#}"
    );
    let ids = world.uploaded_with_fingerprint(&ca_fingerprint);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let ca_id = &ids[0];
    world.emulator.with_state(|s| {
        assert_eq!(s.certificates[ca_id].cert_type, "CA");
        let config = &s.domains[&(ZONE.to_string(), "www.test.com".to_string())].config;
        assert_eq!(config.mode, "sslcert");
        assert_eq!(config.server_cert_ids, [SEEDED_CERT]);
        assert!(config.client_mtls.enabled, "{config:#?}");
        assert_eq!(config.client_mtls.cert_ids, [ca_id.as_str()], "{config:#?}");
    });
    assert!(
        world
            .modifies_of("www.test.com")
            .iter()
            .any(|c| c.request["ClientCertInfo"]
                == json!({"Switch": "on", "CertInfos": [{"CertId": ca_id}]})),
        "{:#?}",
        world.modifies_of("www.test.com")
    );
    let entry = status
        .certificates
        .iter()
        .find(|c| &c.cert_id == ca_id)
        .unwrap_or_else(|| panic!("the CA in status.certificates: {status:#?}"));
    assert!(entry.source.starts_with("secret/client-ca"), "{entry:#?}");
    assert_eq!(
        entry.fingerprint_sha256.as_deref(),
        Some(ca_fingerprint.as_str()),
        "{entry:#?}"
    );

    world
        .assert_no_new_calls(&CHANGES, "a Ready binding with a client CA from a Secret")
        .await;
}

/// A cert-manager Certificate as cert-manager leaves it: the spec, and a status
/// subresource with the Ready condition.
fn certificate(name: &str, secret: &str, hosts: &[&str]) -> kube::api::DynamicObject {
    let resource = edgeone_cert_operator::controller::certmanager::certificate_resource();
    let mut certificate = kube::api::DynamicObject::new(name, &resource);
    certificate.data = json!({"spec": {"secretName": secret, "dnsNames": hosts, "issuerRef": {"name": "test-ca", "kind": "Issuer"}}});
    certificate
}

#[tokio::test]
async fn certificate_ref_waits_for_cert_manager_then_binds() {
    install_cert_manager_crds();
    let world = World::new("certref", &[]).await;
    let resource = edgeone_cert_operator::controller::certmanager::certificate_resource();
    let certificates: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(world.client.clone(), &world.namespace, &resource);
    let hosts = ["abc.test.com"];
    certificates
        .create(&Default::default(), &certificate("web", "web-tls", &hosts))
        .await
        .expect("create Certificate");
    world
        .create("web", json!({"zoneId": ZONE, "hosts": hosts, "mode": "sslcert", "serverCertificates": [{"certificateRef": {"name": "web"}}]}))
        .await;

    // Not issued yet: the binding waits and calls nothing.
    let waiting = world.wait_not_ready("web", "WaitingForCertificate").await;
    assert!(waiting.message.contains("web"), "{}", waiting.message);
    assert!(
        world.emulator.calls().is_empty(),
        "no Tencent call while the Certificate is not Ready"
    );

    // cert-manager issues it: the Secret, then the Ready condition.
    let issued = TestCa::root("Test Root CA", &[])
        .intermediate("Test Issuing CA")
        .issue(&hosts);
    world.put_secret(issued_secret("web-tls", &issued)).await;
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not expired"}]}});
    certificates
        .patch_status(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(ready),
        )
        .await
        .expect("mark the Certificate Ready");
    let status = world.wait_ready("web").await;
    assert_eq!(world.calls("UploadCertificate").len(), 1);
    assert_eq!(status.certificates.len(), 1, "{status:#?}");
    assert_eq!(status.certificates[0].source, "secret/web-tls");
}

#[tokio::test]
async fn a_certificate_close_to_expiry_is_warned_about() {
    let world = World::new("expiry", &["--expiry-warning", "14d"]).await;
    let now = now_unix();
    let issued = TestCa::root("Test Root CA", &[])
        .intermediate("Test Issuing CA")
        .issue_between(&["abc.test.com"], now - DAY, now + 10 * DAY);
    world
        .put_secret(issued_secret("short-lived", &issued))
        .await;
    world
        .create("short", secret_spec(&["abc.test.com"], "short-lived"))
        .await;
    // A warning, not a failure: the binding is Ready all the same.
    let status = world.wait_ready("short").await;
    let expiring = status
        .conditions
        .iter()
        .find(|c| c.type_ == "CertificateExpiringSoon")
        .expect("the condition");
    assert_eq!(expiring.status, "True", "{expiring:?}");
    assert!(
        expiring.message.contains("has not been renewed"),
        "{}",
        expiring.message
    );
    world.wait_event("CertificateExpiringSoon").await;
}

#[tokio::test]
async fn annotated_certificates_get_a_binding_they_own() {
    install_cert_manager_crds();
    let world = World::new("certdriven", &[]).await;
    let resource = edgeone_cert_operator::controller::certmanager::certificate_resource();
    let certificates: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(world.client.clone(), &world.namespace, &resource);
    let hosts = ["abc.test.com", "www.test.com"];
    let issued = TestCa::root("Test Root CA", &[])
        .intermediate("Test Issuing CA")
        .issue(&hosts);
    world.put_secret(issued_secret("site-tls", &issued)).await;
    let mut annotated = certificate("site", "site-tls", &hosts);
    annotated.metadata.annotations = Some(
        [(
            "edgeone.operators.dev/zone-id".to_string(),
            ZONE.to_string(),
        )]
        .into(),
    );
    let created = certificates
        .create(&Default::default(), &annotated)
        .await
        .expect("create Certificate");
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "up to date"}]}});
    certificates
        .patch_status(
            "site",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(ready),
        )
        .await
        .expect("Ready");

    // The operator creates the binding, owned by the Certificate, and it converges.
    let start = std::time::Instant::now();
    while world
        .bindings()
        .get_opt("site")
        .await
        .expect("get binding")
        .is_none()
    {
        assert!(
            start.elapsed() < WAIT,
            "no binding created; operator log: {}",
            world.log.display()
        );
        tokio::time::sleep(POLL).await;
    }
    let status = world.wait_ready("site").await;
    let binding = world.bindings().get("site").await.expect("binding");
    assert_eq!(binding.spec.hosts, hosts);
    assert_eq!(binding.spec.zone_id, ZONE);
    let owner = &binding
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), Some(&owner.uid)),
        ("Certificate", "site", created.metadata.uid.as_ref())
    );
    assert_eq!(
        owner.controller,
        Some(true),
        "garbage collection deletes it with the Certificate"
    );
    assert_eq!(status.certificates[0].source, "secret/site-tls");

    // Taking the annotation away takes the binding away.
    let unannotate = json!({"metadata": {"annotations": {"edgeone.operators.dev/zone-id": null}}});
    certificates
        .patch(
            "site",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(unannotate),
        )
        .await
        .expect("remove annotation");
    world.wait_gone("site").await;
}
