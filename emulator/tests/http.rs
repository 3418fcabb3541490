//! The emulator over real HTTP: the seed document's three examples, signatures, rate
//! limits, faults and the admin endpoint.

use edgeone_cert_operator::tencent::sign::{SigningInput, authorize};
use serde_json::{Value, json};
use teo_emulator::{Emulator, Seed, State};

const SECRET_ID: &str = "AKIDdemo0000000000000000000000000000";
const SECRET_KEY: &str = "demo-secret-key-not-a-real-credential";
const ZONE: &str = "zone-2fgd17m17xw";

async fn emulator(deploy_delay_ms: u64) -> Emulator {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/demo.json")).unwrap();
    let seed: Seed = serde_json::from_str(&text).unwrap();
    let mut state = State::from_seed(&seed).unwrap();
    state.settings.deploy_delay_ms = deploy_delay_ms;
    Emulator::start("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap()
}

/// A signed call the way Tencent's SDKs make it; returns the HTTP status and body.
async fn call_at(
    emu: &Emulator,
    service: &str,
    version: &str,
    action: &str,
    body: &Value,
    key: &str,
    timestamp: i64,
) -> reqwest::Result<(u16, String)> {
    let response = send_at(emu, service, version, action, body, key, timestamp).await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The signed call of [`call_at`], answered but not read.
async fn send_at(
    emu: &Emulator,
    service: &str,
    version: &str,
    action: &str,
    body: &Value,
    key: &str,
    timestamp: i64,
) -> reqwest::Result<reqwest::Response> {
    let payload = body.to_string();
    let host = format!("{service}.tencentcloudapi.com");
    let signed = [
        ("content-type", "application/json"),
        ("host", host.as_str()),
    ];
    let input = SigningInput {
        service,
        timestamp,
        headers: &signed,
        payload: payload.as_bytes(),
    };
    reqwest::Client::new()
        .post(emu.url())
        .header("Host", &host)
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", version)
        .header("X-TC-Timestamp", timestamp.to_string())
        .header(
            "Authorization",
            authorize(SECRET_ID, key, &input).to_header_value(),
        )
        .body(payload)
        .send()
        .await
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn teo(emu: &Emulator, action: &str, body: Value) -> Value {
    let (status, text) = call_at(emu, "teo", "2022-09-01", action, &body, SECRET_KEY, now())
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn error_code(response: &Value) -> &str {
    response["Response"]["Error"]["Code"].as_str().unwrap_or("")
}

fn assert_request_id(response: &Value) {
    let id = response["Response"]["RequestId"]
        .as_str()
        .expect("RequestId");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

async fn admin(emu: &Emulator, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{}/admin/{path}", emu.url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "admin {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn describe_host(emu: &Emulator, host: &str) -> Value {
    let out = teo(
        emu,
        "DescribeAccelerationDomains",
        json!({"ZoneId": ZONE, "Filters": [{"Name": "domain-name", "Values": [host]}]}),
    )
    .await;
    assert_eq!(out["Response"]["TotalCount"], 1, "{out}");
    out["Response"]["AccelerationDomains"][0]["Certificate"].clone()
}

#[tokio::test]
async fn seed_document_examples() {
    let emu = emulator(0).await;
    let examples = [
        json!({"ZoneId": ZONE, "Hosts": ["abc.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": "cert-244ffgv7m17xw"}]}),
        json!({"ZoneId": ZONE, "Hosts": ["abc.test.com"], "Mode": "eofreecert"}),
        json!({"ZoneId": ZONE, "Hosts": ["abc.test.com"], "ClientCertInfo": {"Switch": "on", "CertInfos": [{"CertId": "J2JqATrt"}]}}),
    ];
    let mut ids = Vec::new();
    for example in &examples {
        let out = teo(&emu, "ModifyHostsCertificate", example.clone()).await;
        // The documented response: only a RequestId.
        let response = out["Response"].as_object().unwrap();
        assert_eq!(response.keys().collect::<Vec<_>>(), ["RequestId"], "{out}");
        assert_request_id(&out);
        ids.push(out["Response"]["RequestId"].clone());
    }
    assert_ne!(ids[0], ids[1], "a fresh RequestId per response");
    let logged: Vec<Value> = emu.calls().iter().map(|c| c.request.clone()).collect();
    assert_eq!(logged, examples, "the call log holds the exact bodies");

    let cert = describe_host(&emu, "abc.test.com").await;
    assert_eq!(cert["Mode"], "eofreecert");
    assert_eq!(cert["List"][0]["Type"], "managed");
    assert_eq!(cert["List"][0]["Status"], "deployed");
    assert_eq!(cert["ClientCertInfo"]["Switch"], "on");
    assert_eq!(cert["ClientCertInfo"]["CertInfos"][0]["CertId"], "J2JqATrt");
}

#[tokio::test]
async fn deployment_moves_from_processing_to_deployed() {
    let emu = emulator(300).await;
    teo(&emu, "ModifyHostsCertificate", json!({"ZoneId": ZONE, "Hosts": ["www.test.com"], "Mode": "sslcert", "ServerCertInfo": [{"CertId": "cert-244ffgv7m17xw"}]})).await;
    assert_eq!(
        describe_host(&emu, "www.test.com").await["List"][0]["Status"],
        "processing"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let cert = describe_host(&emu, "www.test.com").await;
    assert_eq!(cert["List"][0]["Status"], "deployed");
    assert_eq!(cert["List"][0]["ExpireTime"], "2030-01-01T00:00:00Z");
}

#[tokio::test]
async fn signature_errors_in_tencent_shape() {
    let emu = emulator(0).await;
    let body = json!({"ZoneId": ZONE});
    let cases = [
        (
            "wrong key",
            "wrong-key",
            now(),
            "AuthFailure.SignatureFailure",
        ),
        (
            "stale timestamp",
            SECRET_KEY,
            now() - 600,
            "AuthFailure.SignatureExpire",
        ),
    ];
    for (what, key, timestamp, code) in cases {
        let (status, text) = call_at(
            &emu,
            "teo",
            "2022-09-01",
            "DescribeAccelerationDomains",
            &body,
            key,
            timestamp,
        )
        .await
        .unwrap();
        let out: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((status, error_code(&out)), (200, code), "{what}: {text}");
        assert!(
            out["Response"]["Error"]["Message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_request_id(&out);
    }
    for (version, action) in [
        ("2099-01-01", "DescribeAccelerationDomains"),
        ("2022-09-01", "NoSuchAction"),
    ] {
        let (_, text) = call_at(&emu, "teo", version, action, &body, SECRET_KEY, now())
            .await
            .unwrap();
        assert!(text.contains("InvalidAction"), "{version} {action}: {text}");
    }
}

#[tokio::test]
async fn rate_limit_per_account_and_action() {
    let emu = emulator(0).await;
    admin(
        &emu,
        reqwest::Method::PUT,
        "settings",
        Some(json!({"teoRateLimit": 5, "sslRateLimit": 5, "deployDelayMs": 0})),
    )
    .await;
    let calls = (0..25).map(|_| teo(&emu, "DescribeAccelerationDomains", json!({"ZoneId": ZONE})));
    let results = futures::future::join_all(calls).await;
    let limited = results
        .iter()
        .filter(|r| error_code(r) == "LimitExceeded.RateLimitExceeded")
        .count();
    let ok = results.iter().filter(|r| error_code(r).is_empty()).count();
    assert_eq!(
        ok + limited,
        25,
        "every answer is a success or the rate-limit code"
    );
    assert!(ok >= 5 && limited > 0, "ok={ok} limited={limited}");
}

#[tokio::test]
async fn injected_faults() {
    let emu = emulator(0).await;
    let modify = json!({"ZoneId": ZONE, "Hosts": ["api.test.com"], "Mode": "eofreecert"});

    admin(
        &emu,
        reqwest::Method::PUT,
        "faults",
        Some(json!({"ModifyHostsCertificate": {"http503": 1.0}})),
    )
    .await;
    let (status, text) = call_at(
        &emu,
        "teo",
        "2022-09-01",
        "ModifyHostsCertificate",
        &modify,
        SECRET_KEY,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status, 503);
    assert!(text.contains("<html>"));
    assert_eq!(
        describe_host(&emu, "api.test.com").await["Mode"],
        "disable",
        "a 503 changes nothing"
    );

    admin(
        &emu,
        reqwest::Method::PUT,
        "faults",
        Some(json!({"ModifyHostsCertificate": {"actionInProgress": 1.0}})),
    )
    .await;
    let out = teo(&emu, "ModifyHostsCertificate", modify.clone()).await;
    assert_eq!(error_code(&out), "InvalidParameter.ActionInProgress");

    admin(
        &emu,
        reqwest::Method::PUT,
        "faults",
        Some(json!({"ModifyHostsCertificate": {"drop": 1.0}})),
    )
    .await;
    let dropped = call_at(
        &emu,
        "teo",
        "2022-09-01",
        "ModifyHostsCertificate",
        &modify,
        SECRET_KEY,
        now(),
    )
    .await;
    assert!(dropped.is_err(), "the connection closes without an answer");
    assert_eq!(
        describe_host(&emu, "api.test.com").await["Mode"],
        "eofreecert",
        "but the change took effect"
    );

    let counters = admin(&emu, reqwest::Method::GET, "counters", None).await;
    assert_eq!(counters["ModifyHostsCertificate"]["HTTP 503"], 1);
    assert_eq!(
        counters["ModifyHostsCertificate"]["InvalidParameter.ActionInProgress"],
        1
    );
    assert_eq!(counters["ModifyHostsCertificate"]["Dropped (Success)"], 1);
}

#[tokio::test]
async fn malformed_answers() {
    let emu = emulator(0).await;
    let modify = json!({"ZoneId": ZONE, "Hosts": ["api.test.com"], "Mode": "eofreecert"});
    let fault = |rule: Value| {
        admin(
            &emu,
            reqwest::Method::PUT,
            "faults",
            Some(json!({"ModifyHostsCertificate": rule})),
        )
    };
    let send = || {
        send_at(
            &emu,
            "teo",
            "2022-09-01",
            "ModifyHostsCertificate",
            &modify,
            SECRET_KEY,
            now(),
        )
    };
    let content_type = |response: &reqwest::Response| {
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };

    // An HTML page with HTTP 200; the request never reached the API.
    fault(json!({"htmlError": 1.0})).await;
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "text/html");
    let text = response.text().await.unwrap();
    assert!(
        text.contains("<html>") && text.contains("An error occurred."),
        "{text}"
    );
    assert_eq!(describe_host(&emu, "api.test.com").await["Mode"], "disable");

    // A well-formed error with a code nobody knows; nothing changes either.
    fault(json!({"unknownCode": 1.0})).await;
    let out = teo(&emu, "ModifyHostsCertificate", modify.clone()).await;
    assert_eq!(error_code(&out), "FailedOperation.SomethingNew");
    assert!(
        out["Response"]["Error"]["Message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_request_id(&out);
    assert_eq!(describe_host(&emu, "api.test.com").await["Mode"], "disable");

    // Half of the real answer: JSON that never closes; the change took effect.
    fault(json!({"invalidJson": 1.0})).await;
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    let text = response.text().await.unwrap();
    assert!(text.starts_with(r#"{"Response":"#), "{text}");
    let error = serde_json::from_str::<Value>(&text).unwrap_err();
    assert!(error.is_eof(), "{text}: {error}");
    assert_eq!(
        describe_host(&emu, "api.test.com").await["Mode"],
        "eofreecert"
    );

    // The real answer without its RequestId.
    fault(json!({"missingRequestId": 1.0})).await;
    let (status, text) = call_at(
        &emu,
        "teo",
        "2022-09-01",
        "DescribeAccelerationDomains",
        &json!({"ZoneId": ZONE}),
        SECRET_KEY,
        now(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "a fault on another action: {text}");
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    let out: Value = response.json().await.unwrap();
    assert_eq!(
        out,
        json!({"Response": {}}),
        "ModifyHostsCertificate answers only a RequestId"
    );

    // The real answer padded to 20 MiB, streamed without a Content-Length.
    fault(json!({"hugeBody": 1.0})).await;
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(response.content_length(), None, "the size is not announced");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), teo_emulator::faults::HUGE_BODY_BYTES);
    let out: Value = serde_json::from_slice(&bytes).unwrap();
    assert_request_id(&out);
    assert!(
        out["Padding"]
            .as_str()
            .is_some_and(|p| p.len() > 20_000_000)
    );

    let counters = admin(&emu, reqwest::Method::GET, "counters", None).await;
    let outcomes = &counters["ModifyHostsCertificate"];
    for outcome in [
        "HTTP 200",
        "FailedOperation.SomethingNew",
        "Invalid JSON (Success)",
        "Missing RequestId (Success)",
        "Huge body (Success)",
    ] {
        assert_eq!(outcomes[outcome], 1, "{outcome}: {counters}");
    }
    let missing = emu
        .calls()
        .into_iter()
        .find(|c| c.outcome == "Missing RequestId (Success)")
        .unwrap();
    assert_eq!(
        missing.request_id, None,
        "the log does not claim an id the client never saw"
    );
}

#[tokio::test]
async fn admin_drift_and_call_log() {
    let emu = emulator(0).await;
    admin(
        &emu,
        reqwest::Method::POST,
        "modify",
        Some(json!({"ZoneId": ZONE, "Hosts": ["abc.test.com"], "Mode": "eofreecert"})),
    )
    .await;
    assert_eq!(
        describe_host(&emu, "abc.test.com").await["Mode"],
        "eofreecert"
    );
    let calls = admin(
        &emu,
        reqwest::Method::GET,
        "calls?action=DescribeAccelerationDomains",
        None,
    )
    .await;
    assert_eq!(
        calls.as_array().unwrap().len(),
        1,
        "admin changes are not API calls"
    );
    assert_eq!(calls[0]["uin"], "100000000001");
    admin(&emu, reqwest::Method::DELETE, "calls", None).await;
    assert!(emu.calls().is_empty());
    let state = admin(&emu, reqwest::Method::GET, "state", None).await;
    assert!(
        state["domains"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "abc.test.com" && d["config"]["mode"] == "eofreecert")
    );
}
