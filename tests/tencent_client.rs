//! The Tencent Cloud client against the in-process emulator (and, where the emulator
//! cannot show it, a canned HTTP server that records what the client sent).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeone_cert_operator::tencent::credentials::{
    CredentialProvider, Credentials, CredentialsError, TkeOidcCredentials,
};
use edgeone_cert_operator::tencent::error::{CallError, ErrorClass};
use edgeone_cert_operator::tencent::ssl::SslApi;
use edgeone_cert_operator::tencent::teo::{
    CertId, CertificateInfo, ModifyHostsCertificateRequest, MutualTls, TeoApi,
};
use edgeone_cert_operator::tencent::transport::{
    Endpoints, Service, Transport, TransportConfig, TransportError,
};
use serde_json::{Value, json};
use teo_emulator::{Emulator, Seed, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET_ID: &str = "AKIDdemo0000000000000000000000000000";
const SECRET_KEY: &str = "demo-secret-key-not-a-real-credential";
const ZONE: &str = "zone-2fgd17m17xw";
const UIN: &str = "100000000001";
const ROLE_ARN: &str = "qcs::cam::uin/100000000001:roleName/edgeone-cert-operator";

fn demo_seed() -> Seed {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/emulator/seeds/demo.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn emulator() -> Emulator {
    let mut state = State::from_seed(&demo_seed()).unwrap();
    state.settings.deploy_delay_ms = 0;
    Emulator::start("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap()
}

fn config(url: &str) -> TransportConfig {
    TransportConfig {
        endpoints: Endpoints::all(url),
        ..TransportConfig::default()
    }
}

fn transport(emu: &Emulator) -> Arc<Transport> {
    Arc::new(Transport::new(config(&emu.url())).unwrap())
}

fn creds() -> Credentials {
    Credentials::new(SECRET_ID, SECRET_KEY, None)
}

fn set_faults(emu: &Emulator, faults: Value) {
    emu.with_state(|s| s.faults = serde_json::from_value(faults).unwrap());
}

/// The seed document's three examples, built with the typed request.
fn seed_examples() -> Vec<ModifyHostsCertificateRequest> {
    let base = ModifyHostsCertificateRequest {
        zone_id: ZONE.into(),
        hosts: vec!["abc.test.com".into()],
        ..Default::default()
    };
    vec![
        ModifyHostsCertificateRequest {
            mode: Some("sslcert".into()),
            server_cert_info: Some(vec![CertId::new("cert-244ffgv7m17xw")]),
            ..base.clone()
        },
        ModifyHostsCertificateRequest {
            mode: Some("eofreecert".into()),
            ..base.clone()
        },
        ModifyHostsCertificateRequest {
            client_cert_info: Some(MutualTls {
                switch: "on".into(),
                cert_infos: Some(vec![CertificateInfo::id("J2JqATrt")]),
            }),
            ..base
        },
    ]
}

#[tokio::test]
async fn seed_document_examples_send_the_documented_bodies() {
    let emu = emulator().await;
    let teo = TeoApi::new(transport(&emu));
    let mut request_ids = Vec::new();
    for request in seed_examples() {
        request_ids.push(
            teo.modify_hosts_certificate(&creds(), &request)
                .await
                .unwrap(),
        );
    }
    let calls = emu.calls();
    let logged: Vec<&Value> = calls.iter().map(|c| &c.request).collect();
    assert_eq!(
        logged,
        [
            &json!({"ZoneId":"zone-2fgd17m17xw","Hosts":["abc.test.com"],"Mode":"sslcert","ServerCertInfo":[{"CertId":"cert-244ffgv7m17xw"}]}),
            &json!({"ZoneId":"zone-2fgd17m17xw","Hosts":["abc.test.com"],"Mode":"eofreecert"}),
            &json!({"ZoneId":"zone-2fgd17m17xw","Hosts":["abc.test.com"],"ClientCertInfo":{"Switch":"on","CertInfos":[{"CertId":"J2JqATrt"}]}}),
        ]
    );
    for (call, id) in calls.iter().zip(&request_ids) {
        assert_eq!(call.outcome, "Success");
        assert_eq!(call.secret_id.as_deref(), Some(SECRET_ID));
        assert_eq!(call.request_id.as_ref(), Some(id));
    }

    let (domains, request_id) = teo
        .describe_domains(&creds(), ZONE, &["abc.test.com".to_string()])
        .await
        .unwrap();
    assert!(!request_id.is_empty());
    assert_eq!(domains.len(), 1);
    let cert = domains[0].certificate.as_ref().unwrap();
    assert_eq!(cert.mode.as_deref(), Some("eofreecert"));
    let list = cert.list.as_ref().unwrap();
    assert_eq!(list[0].status.as_deref(), Some("deployed"));
    let client = cert.client_cert_info.as_ref().unwrap();
    assert_eq!(client.switch, "on");
    assert_eq!(client.cert_infos.as_ref().unwrap()[0].cert_id, "J2JqATrt");
}

#[tokio::test]
async fn describe_chunks_hosts_by_twenty_and_pages_by_two_hundred() {
    let emu = emulator().await;
    let hosts: Vec<String> = (0..450).map(|i| format!("h{i:03}.paging.com")).collect();
    let extra: Seed = serde_json::from_value(json!({
        "zones": [{"zoneId": "zone-paging", "uin": UIN, "name": "paging.com", "hosts": hosts}]
    }))
    .unwrap();
    emu.with_state(|s| s.merge_seed(&extra)).unwrap();
    let teo = TeoApi::new(transport(&emu));

    // 45 distinct hosts, one duplicate and one that does not exist.
    let mut wanted: Vec<String> = hosts[..45].to_vec();
    wanted.push(hosts[3].clone());
    wanted.push(hosts[4].to_uppercase());
    wanted.push("missing.paging.com".into());
    let (domains, last_id) = teo
        .describe_domains(&creds(), "zone-paging", &wanted)
        .await
        .unwrap();
    let mut names: Vec<&str> = domains.iter().map(|d| d.domain_name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        hosts[..45].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(domains.iter().all(|d| d.zone_id == "zone-paging"));
    let calls = emu.calls();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| {
            assert_eq!(c.request["Filters"][0]["Name"], "domain-name");
            assert_eq!(c.request["Filters"][0]["Fuzzy"], false);
            assert_eq!(c.request["Limit"], 200);
            c.request["Filters"][0]["Values"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes, [20, 20, 6]);
    assert_eq!(calls.last().unwrap().request_id.as_ref(), Some(&last_id));

    let before = emu.calls().len();
    let (all, _) = teo.describe_zone(&creds(), "zone-paging").await.unwrap();
    assert_eq!(all.len(), 450);
    let offsets: Vec<Value> = emu.calls()[before..]
        .iter()
        .map(|c| {
            assert!(c.request.get("Filters").is_none());
            c.request["Offset"].clone()
        })
        .collect();
    assert_eq!(offsets, [json!(0), json!(200), json!(400)]);

    let (none, id) = teo
        .describe_domains(&creds(), "zone-paging", &[])
        .await
        .unwrap();
    assert!(none.is_empty() && id.is_empty(), "no hosts, no call");
}

#[tokio::test]
async fn errors_are_classified() {
    let emu = emulator().await;
    let transport = transport(&emu);
    let teo = TeoApi::new(transport.clone());
    let example = &seed_examples()[1];

    let error = teo
        .describe_domains(&creds(), "zone-doesnotexist", &["a.test.com".into()])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ResourceUnavailable.ZoneNotFound"));
    assert_eq!(error.class(), ErrorClass::Terminal);
    let text = error.to_string();
    assert!(
        text.starts_with("ResourceUnavailable.ZoneNotFound: ")
            && text.contains(error.request_id().unwrap()),
        "{text}"
    );

    let wrong_key = Credentials::new(SECRET_ID, "wrong-key", None);
    let error = teo
        .modify_hosts_certificate(&wrong_key, example)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("AuthFailure.SignatureFailure"));
    assert_eq!(error.class(), ErrorClass::Auth);
    let unknown = Credentials::new("AKIDnobody", SECRET_KEY, None);
    let error = teo
        .modify_hosts_certificate(&unknown, example)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("AuthFailure.SecretIdNotFound"));
    assert_eq!(error.class(), ErrorClass::Auth);

    set_faults(
        &emu,
        json!({"ModifyHostsCertificate": {"internalError": 1.0}}),
    );
    let error = teo
        .modify_hosts_certificate(&creds(), example)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InternalError"));
    assert_eq!(error.class(), ErrorClass::Retryable);

    set_faults(
        &emu,
        json!({"ModifyHostsCertificate": {"configLocked": 1.0}}),
    );
    let error = teo
        .modify_hosts_certificate(&creds(), example)
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Retryable);

    set_faults(&emu, json!({"ModifyHostsCertificate": {"http503": 1.0}}));
    let error = teo
        .modify_hosts_certificate(&creds(), example)
        .await
        .unwrap_err();
    match &error {
        CallError::InvalidResponse { status, detail } => {
            assert_eq!(*status, 503);
            assert!(detail.contains("503 Service Unavailable"), "{detail}");
            assert!(!detail.contains('<'), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::Retryable);

    set_faults(&emu, json!({"ModifyHostsCertificate": {"drop": 1.0}}));
    let error = teo
        .modify_hosts_certificate(&creds(), example)
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Network { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Retryable);

    // None of these were retried inside the call: one logged call each.
    let outcomes: Vec<String> = emu.calls().iter().map(|c| c.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            "ResourceUnavailable.ZoneNotFound",
            "AuthFailure.SignatureFailure",
            "AuthFailure.SecretIdNotFound",
            "InternalError",
            "OperationDenied.ConfigLocked",
            "HTTP 503",
            "Dropped (Success)",
        ]
    );

    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let nowhere = TeoApi::new(Arc::new(Transport::new(config(&url)).unwrap()));
    let error = nowhere
        .modify_hosts_certificate(&creds(), example)
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Network { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Retryable);
}

#[tokio::test]
async fn the_client_limiter_keeps_concurrent_calls_under_the_api_limit() {
    let emu = emulator().await;
    assert_eq!(emu.with_state(|s| s.settings.teo_rate_limit), 20);
    let transport = transport(&emu);
    let teo = TeoApi::new(transport.clone());
    let request = &seed_examples()[0];
    let calls = (0..60).map(|_| {
        let teo = teo.clone();
        async move { teo.modify_hosts_certificate(&creds(), request).await }
    });
    let results = futures::future::join_all(calls).await;
    let errors: Vec<&CallError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(transport.limiter().total_wait() > Duration::ZERO);
    let throttled_at_emulator = emu
        .calls()
        .iter()
        .filter(|c| c.outcome == "LimitExceeded.RateLimitExceeded")
        .count();
    eprintln!("throttled answers absorbed inside the transport: {throttled_at_emulator}");
}

#[tokio::test]
async fn without_the_limiter_throttling_reaches_the_caller_as_throttled() {
    let emu = emulator().await;
    let transport = Arc::new(
        Transport::new(TransportConfig {
            teo_rate_per_second: 0,
            max_throttle_retries: 0,
            ..config(&emu.url())
        })
        .unwrap(),
    );
    let teo = TeoApi::new(transport);
    let request = &seed_examples()[0];
    let creds = creds();
    let calls = (0..60).map(|_| teo.modify_hosts_certificate(&creds, request));
    let results = futures::future::join_all(calls).await;
    let throttled: Vec<&CallError> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .inspect(|e| assert_eq!(e.code(), Some("LimitExceeded.RateLimitExceeded")))
        .collect();
    assert!(!throttled.is_empty());
    assert!(throttled.iter().all(|e| e.class() == ErrorClass::Throttled));
}

#[tokio::test]
async fn tke_pod_identity_through_sts() {
    let emu = emulator().await;
    let transport = transport(&emu);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "not-the-token\n").unwrap();
    let provider = TkeOidcCredentials::new(
        transport.clone(),
        "ap-guangzhou",
        "tke-oidc-demo",
        &token_file,
        ROLE_ARN,
    );

    let error = provider.credentials().await.unwrap_err();
    assert!(matches!(error, CredentialsError::Sts { .. }), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Auth);
    assert!(
        error
            .to_string()
            .contains("InvalidParameter.WebIdentityTokenError"),
        "{error}"
    );

    // The file is read again: the kubelet has rotated the token.
    std::fs::write(&token_file, "demo-web-identity-token\n").unwrap();
    let temporary = provider.credentials().await.unwrap();
    assert!(temporary.secret_id.starts_with("AKIDtmp"), "{temporary:?}");
    assert!(temporary.token().is_some());
    assert_eq!(provider.credentials().await.unwrap(), temporary, "cached");

    let teo = TeoApi::new(transport);
    teo.modify_hosts_certificate(&temporary, &seed_examples()[1])
        .await
        .unwrap();

    let calls = emu.calls();
    let actions: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.action.as_str(), c.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (
                "AssumeRoleWithWebIdentity",
                "InvalidParameter.WebIdentityTokenError"
            ),
            ("AssumeRoleWithWebIdentity", "Success"),
            ("ModifyHostsCertificate", "Success"),
        ]
    );
    assert_eq!(calls[1].service, "sts");
    assert_eq!(calls[1].secret_id, None, "unsigned");
    assert_eq!(calls[1].request["ProviderId"], "tke-oidc-demo");
    assert_eq!(calls[1].request["RoleArn"], ROLE_ARN);
    assert_eq!(
        calls[2].secret_id.as_deref(),
        Some(temporary.secret_id.as_str())
    );
    assert_eq!(calls[2].uin.as_deref(), Some(UIN));

    // A token that does not belong to the temporary SecretId is an auth failure.
    let forged = Credentials::new(
        temporary.secret_id.clone(),
        temporary.secret_key(),
        Some("x".into()),
    );
    let error = teo
        .modify_hosts_certificate(&forged, &seed_examples()[1])
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("AuthFailure.TokenFailure"));
    assert_eq!(error.class(), ErrorClass::Auth);
}

fn pem(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

#[tokio::test]
async fn upload_is_idempotent_and_certificates_can_be_described_and_deleted() {
    let emu = emulator().await;
    let ssl = SslApi::new(transport(&emu));
    let (cert, key) = pem(&["abc.test.com"]);
    let first = ssl
        .upload_certificate(&creds(), &cert, Some(&key), "SVR", "abc")
        .await
        .unwrap();
    let second = ssl
        .upload_certificate(&creds(), &cert, Some(&key), "SVR", "abc")
        .await
        .unwrap();
    assert_eq!(first, second, "the RepeatCertId of the existing upload");
    assert_eq!(
        emu.with_state(|s| s.certificates.len()),
        3,
        "two seeded, one uploaded"
    );
    for call in emu.calls() {
        assert_eq!(call.request["Repeatable"], false);
        assert_eq!(call.request["CertificateType"], "SVR");
        assert_eq!(call.request["Alias"], "abc");
        assert_eq!(call.request["CertificatePrivateKey"], "<redacted>");
    }

    let detail = ssl.describe_certificate(&creds(), &first).await.unwrap();
    assert_eq!(detail.certificate_id.as_deref(), Some(first.as_str()));
    assert_eq!(detail.certificate_type.as_deref(), Some("SVR"));
    assert_eq!(detail.alias.as_deref(), Some("abc"));
    assert_eq!(
        detail.subject_alt_name,
        Some(vec!["abc.test.com".to_string()])
    );
    assert_eq!(detail.other["OwnerUin"], UIN);

    assert!(ssl.delete_certificate(&creds(), &first).await.unwrap());
    let error = ssl
        .describe_certificate(&creds(), &first)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("FailedOperation.CertificateNotFound"));
    assert_eq!(error.class(), ErrorClass::Terminal);

    let error = ssl
        .upload_certificate(&creds(), &cert, None, "XYZ", "")
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::InvalidRequest { .. }),
        "{error:?}"
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let error = Transport::new(config("http://teo.tencentcloudapi.com")).unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::InsecureEndpoint {
                service: Service::Teo,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("https"), "{error}");
    assert!(Transport::new(config("http://127.0.0.1:1")).is_ok());
    assert!(
        Transport::new(TransportConfig {
            allow_insecure_http: true,
            ..config("http://teo.tencentcloudapi.com")
        })
        .is_ok()
    );
}

/// A raw request as the canned server received it.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Answers each connection's one request with the next `(status, body)` and closes it.
async fn canned(responses: Vec<(u16, Vec<u8>)>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        for (status, body) in responses {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 8192];
            let head_end = loop {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed early");
                data.extend_from_slice(&buf[..n]);
                if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
            let mut request = Received {
                head,
                body: Vec::new(),
            };
            let length: usize = request
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while data.len() < head_end + length {
                let n = stream.read(&mut buf).await.unwrap();
                data.extend_from_slice(&buf[..n]);
            }
            request.body = data[head_end..head_end + length].to_vec();
            log.lock().unwrap().push(request);
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, received)
}

fn ok(body: Value) -> (u16, Vec<u8>) {
    (200, json!({ "Response": body }).to_string().into_bytes())
}

#[tokio::test]
async fn headers_signature_and_token_as_sent() {
    let (url, received) = canned(vec![ok(json!({"RequestId": "r-1"}))]).await;
    let transport = Transport::new(TransportConfig {
        region: Some("ap-singapore".into()),
        language: Some("en-US".into()),
        ..config(&url)
    })
    .unwrap();
    let temporary = Credentials::new("AKIDtmp1", "tmp-key", Some("session-token".into()));
    let reply = transport
        .call::<_, Value>(
            Some(&temporary),
            Service::Teo,
            "ModifyHostsCertificate",
            &json!({"ZoneId": "z"}),
        )
        .await
        .unwrap();
    assert_eq!(reply.request_id, "r-1");
    assert_eq!(reply.body, json!({}));

    let request = received.lock().unwrap()[0].clone();
    assert!(
        request.head.starts_with("POST / HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    let host = url.trim_start_matches("http://");
    assert_eq!(request.header("host").as_deref(), Some(host));
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        request.header("x-tc-action").as_deref(),
        Some("ModifyHostsCertificate")
    );
    assert_eq!(
        request.header("x-tc-version").as_deref(),
        Some("2022-09-01")
    );
    assert_eq!(
        request.header("x-tc-region").as_deref(),
        Some("ap-singapore")
    );
    assert_eq!(request.header("x-tc-language").as_deref(), Some("en-US"));
    assert_eq!(
        request.header("x-tc-token").as_deref(),
        Some("session-token")
    );
    assert_eq!(request.body, br#"{"ZoneId":"z"}"#);

    // The signature verifies over exactly what was sent.
    use edgeone_cert_operator::tencent::sign::{self, Authorization, SigningInput};
    let auth = Authorization::parse(&request.header("authorization").unwrap()).unwrap();
    assert_eq!(auth.secret_id, "AKIDtmp1");
    assert_eq!(auth.service, "teo");
    assert_eq!(auth.signed_headers, "content-type;host");
    let timestamp: i64 = request.header("x-tc-timestamp").unwrap().parse().unwrap();
    let headers = [("content-type", "application/json"), ("host", host)];
    let input = SigningInput {
        service: "teo",
        timestamp,
        headers: &headers,
        payload: &request.body,
    };
    assert!(sign::signatures_equal(
        &auth.signature,
        &sign::signature("tmp-key", &input)
    ));
}

#[tokio::test]
async fn unsigned_sts_calls_use_skip_and_the_tke_region() {
    let (url, received) = canned(vec![ok(json!({
        "Credentials": {"Token": "t", "TmpSecretId": "AKIDtmp", "TmpSecretKey": "k"},
        "ExpiredTime": jiff::Timestamp::now().as_second() + 7200,
        "Expiration": "x",
        "RequestId": "r-sts"
    }))])
    .await;
    let transport = Arc::new(Transport::new(config(&url)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "jwt").unwrap();
    let vars = |name: &str| match name {
        "TKE_REGION" => Some("ap-shanghai".to_string()),
        "TKE_PROVIDER_ID" => Some("oidc".to_string()),
        "TKE_WEB_IDENTITY_TOKEN_FILE" => Some(token_file.display().to_string()),
        "TKE_ROLE_ARN" => Some("role".to_string()),
        _ => None,
    };
    let provider = TkeOidcCredentials::from_vars(transport, vars).unwrap();
    let creds = provider.credentials().await.unwrap();
    assert_eq!(creds.token(), Some("t"));
    let request = received.lock().unwrap()[0].clone();
    assert_eq!(request.header("authorization").as_deref(), Some("SKIP"));
    assert_eq!(
        request.header("x-tc-region").as_deref(),
        Some("ap-shanghai")
    );
    assert_eq!(
        request.header("x-tc-version").as_deref(),
        Some("2018-08-13")
    );
    assert_eq!(request.header("x-tc-token"), None);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["WebIdentityToken"], "jwt");
    assert_eq!(body["ProviderId"], "oidc");
    assert_eq!(body["RoleArn"], "role");
    assert!(
        body["RoleSessionName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    );
}

#[tokio::test]
async fn throttled_answers_are_retried_inside_the_call() {
    let throttled = ok(json!({
        "Error": {"Code": "RequestLimitExceeded", "Message": "slow down"},
        "RequestId": "r-throttled"
    }));
    let (url, received) = canned(vec![
        throttled.clone(),
        throttled.clone(),
        ok(json!({"RequestId": "r-ok"})),
    ])
    .await;
    let transport = Transport::new(config(&url)).unwrap();
    let reply = transport
        .call::<_, Value>(
            Some(&creds()),
            Service::Ssl,
            "DeleteCertificate",
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(reply.request_id, "r-ok");
    assert_eq!(received.lock().unwrap().len(), 3);

    // With the retries used up, the caller sees the throttling.
    let (url, _) = canned(vec![throttled.clone(), throttled]).await;
    let transport = Transport::new(TransportConfig {
        max_throttle_retries: 1,
        ..config(&url)
    })
    .unwrap();
    let error = transport
        .call::<_, Value>(
            Some(&creds()),
            Service::Ssl,
            "DeleteCertificate",
            &json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Throttled);
    assert_eq!(error.request_id(), Some("r-throttled"));
}

#[tokio::test]
async fn malformed_and_oversized_answers() {
    let huge = {
        let mut body = br#"{"Response":{"RequestId":"r","Pad":""#.to_vec();
        body.extend(std::iter::repeat_n(b'x', 9 * 1024 * 1024));
        body.extend_from_slice(br#""}}"#);
        body
    };
    let (url, _) = canned(vec![
        (200, huge),
        (200, br#"{"Response":{"TotalCount":1}}"#.to_vec()),
        (
            200,
            br#"{"Response":{"TotalCount":"many","RequestId":"r"}}"#.to_vec(),
        ),
        (404, b"<html><body>Not Found</body></html>".to_vec()),
    ])
    .await;
    let transport = Transport::new(config(&url)).unwrap();
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Count {
        total_count: u64,
    }
    let mut details = Vec::new();
    for _ in 0..4 {
        let error = transport
            .call::<_, Count>(
                Some(&creds()),
                Service::Teo,
                "DescribeAccelerationDomains",
                &json!({}),
            )
            .await
            .unwrap_err();
        let CallError::InvalidResponse { status, detail } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(error.class(), ErrorClass::Terminal, "{error}");
        details.push((*status, detail.clone()));
    }
    assert!(details[0].1.contains("exceeds 8 MiB"), "{details:?}");
    assert!(details[1].1.contains("RequestId"), "{details:?}");
    assert!(
        details[2].1.contains("wrong type") && !details[2].1.contains("many"),
        "{details:?}"
    );
    assert_eq!(details[3].0, 404);
    assert!(details[3].1.contains("Not Found"), "{details:?}");
}

#[tokio::test]
async fn a_listing_page_is_asked_for_again_after_a_transient_failure() {
    let page = ok(json!({
        "TotalCount": 1,
        "AccelerationDomains": [{"DomainName": "abc.test.com", "ZoneId": "zone-1"}],
        "RequestId": "r-page",
    }));
    let html = |status: u16| (status, b"<html>Bad Gateway</html>".to_vec());
    let (url, received) = canned(vec![html(502), page.clone()]).await;
    let teo = TeoApi::new(Arc::new(Transport::new(config(&url)).unwrap()));
    let (domains, request_id) = teo.describe_zone(&creds(), "zone-1").await.unwrap();
    assert_eq!(domains.len(), 1);
    assert_eq!(request_id, "r-page");
    assert_eq!(received.lock().unwrap().len(), 2, "one retry of the page");

    // Three transient failures in a row: the listing fails, after three tries.
    let (url, received) = canned(vec![html(502), html(503), html(502), page]).await;
    let teo = TeoApi::new(Arc::new(Transport::new(config(&url)).unwrap()));
    let error = teo.describe_zone(&creds(), "zone-1").await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Retryable, "{error}");
    assert_eq!(received.lock().unwrap().len(), 3);
}
