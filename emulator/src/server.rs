//! The HTTP front: one loopback listener for `teo`, `ssl` and `sts` (`POST /`, routed
//! by Host or by the credential scope) and the admin endpoint under `/admin/`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::{self, Caller};
use crate::error::{ApiError, ApiResult};
use crate::faults::{Failure, FaultConfig, HUGE_BODY_BYTES, Malformed};
use crate::model::{Millis, Seed, Settings, State, now_millis, rfc3339};
use crate::ratelimit::RateLimiter;
use crate::{ssl, sts, teo};

/// Requests larger than this are refused before they are read.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// One API call as the emulator saw it, for tests and benchmarks.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub seq: u64,
    pub time: String,
    pub service: String,
    pub action: String,
    pub secret_id: Option<String>,
    pub uin: Option<String>,
    /// The request body, with private keys and tokens replaced by `<redacted>`.
    pub request: Value,
    /// `Success`, the error code, `HTTP 502`/`HTTP 503`/`HTTP 200` (an HTML page), or
    /// the outcome behind a fault on the answer: `Dropped (…)`, `Invalid JSON (…)`,
    /// `Missing RequestId (…)`, `Huge body (…)`.
    pub outcome: String,
    pub request_id: Option<String>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    limiter: Mutex<RateLimiter>,
    calls: Mutex<Vec<CallRecord>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures half-updated in a
    // way that matters to an emulator; keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running emulator. Dropping it stops the listener.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Binds `listen` (use port 0 for a free one) and serves until dropped.
    pub async fn start(listen: SocketAddr, state: State) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            ..Shared::default()
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls recorded so far.
    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.shared.calls).clone()
    }

    /// Runs `f` on the live state (for tests that arrange or inspect it directly).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut lock(&self.shared.state))
    }

    /// Waits until the listener stops (it does not on its own).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            // An error here is a client that went away or a dropped-connection fault.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The error that makes hyper close the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type HttpResponse = Response<Either<Full<Bytes>, PaddedBody>>;

fn full(bytes: impl Into<Bytes>) -> Either<Full<Bytes>, PaddedBody> {
    Either::Left(Full::new(bytes.into()))
}

/// `prefix`, then `padding` bytes of `x`, then `suffix`, made a chunk at a time as the
/// connection takes them, so a huge answer costs the emulator no more than a chunk.
/// Its size is not announced: the answer goes out chunked, without `Content-Length`.
struct PaddedBody {
    prefix: Option<Bytes>,
    padding: usize,
    suffix: Option<Bytes>,
}

static PADDING: [u8; 64 * 1024] = [b'x'; 64 * 1024];

impl Body for PaddedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let chunk = if let Some(prefix) = this.prefix.take() {
            prefix
        } else if this.padding > 0 {
            let n = this.padding.min(PADDING.len());
            this.padding -= n;
            Bytes::from_static(&PADDING[..n])
        } else if let Some(suffix) = this.suffix.take() {
            suffix
        } else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.padding == 0 && self.suffix.is_none()
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<HttpResponse, DropConnection> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let method = req.method().clone();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or unreadable",
            ));
        }
    };
    if let Some(admin_path) = path.strip_prefix("/admin/") {
        return Ok(admin(&shared, &method, admin_path, &query, &body));
    }
    if method != Method::POST || path != "/" {
        return Ok(plain(StatusCode::NOT_FOUND, "the API answers POST / only"));
    }
    api(&shared, &parts.headers, &body).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The service a request is for: by Host (`teo.tencentcloudapi.com`,
/// `ssl.intl.tencentcloudapi.com`, …), else by the credential scope, else by action.
fn route(headers: &HeaderMap, action: &str) -> Option<&'static str> {
    const SERVICES: [&str; 3] = ["teo", "ssl", "sts"];
    let by_host = header(headers, "host").and_then(|host| {
        let first = host.split('.').next()?;
        SERVICES
            .into_iter()
            .find(|s| *s == first && host.contains(".tencentcloudapi.com"))
    });
    let by_scope = || {
        let auth = header(headers, "authorization")?;
        let scope = edgeone_cert_operator::tencent::sign::Authorization::parse(auth)?.service;
        SERVICES.into_iter().find(|s| *s == scope)
    };
    let by_action = || (action == "AssumeRoleWithWebIdentity").then_some("sts");
    by_host.or_else(by_scope).or_else(by_action)
}

fn rate_limit(settings: &Settings, service: &str) -> u32 {
    if service == "ssl" {
        settings.ssl_rate_limit
    } else {
        settings.teo_rate_limit
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> ApiResult<T> {
    serde_json::from_value(body.clone()).map_err(|e| ApiError::from_body_error(&e))
}

/// Runs an action on the state. `caller` is `None` only for unsigned STS calls.
fn dispatch(
    state: &mut State,
    service: &str,
    action: &str,
    caller: Option<&Caller>,
    body: &Value,
    now: Millis,
) -> ApiResult<Value> {
    let uin = caller.map(|c| c.uin.as_str()).unwrap_or_default();
    match (service, action) {
        ("teo", "ModifyHostsCertificate") => {
            teo::modify_hosts_certificate(state, uin, parse(body)?, now)
        }
        ("teo", "DescribeAccelerationDomains") => {
            teo::describe_acceleration_domains(state, uin, parse(body)?, now)
        }
        ("ssl", "UploadCertificate") => ssl::upload_certificate(state, uin, parse(body)?, now),
        ("ssl", "DescribeCertificate") => ssl::describe_certificate(state, uin, parse(body)?, now),
        ("ssl", "DescribeCertificates") => {
            ssl::describe_certificates(state, uin, parse(body)?, now)
        }
        ("ssl", "DeleteCertificate") => ssl::delete_certificate(state, uin, parse(body)?),
        ("sts", "AssumeRoleWithWebIdentity") => {
            sts::assume_role_with_web_identity(state, parse(body)?, now)
        }
        _ => Err(ApiError::new(
            "InvalidAction",
            format!("The action `{action}` is not found for service `{service}`."),
        )),
    }
}

fn version_of(service: &str) -> &'static str {
    match service {
        "teo" => teo::VERSION,
        "ssl" => ssl::VERSION,
        _ => sts::VERSION,
    }
}

async fn api(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HttpResponse, DropConnection> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let now = now_millis();
    let action = header(headers, "x-tc-action")
        .unwrap_or_default()
        .to_owned();
    let service = route(headers, &action);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut record = CallRecord {
        seq: 0,
        time: rfc3339(now),
        service: service.unwrap_or("unknown").to_owned(),
        action: action.clone(),
        secret_id: None,
        uin: None,
        request: parsed.as_ref().map(redacted).unwrap_or(Value::Null),
        outcome: String::new(),
        request_id: Some(request_id.clone()),
    };

    let plan = lock(&shared.state).faults.plan(&action, &mut rand::rng());
    if plan.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(plan.delay_ms)).await;
    }
    if let Some(Failure::Http(status)) = plan.failure {
        record.outcome = format!("HTTP {status}");
        record.request_id = None;
        log_call(shared, record);
        return Ok(html_error(status));
    }

    let result = (|| -> ApiResult<Value> {
        if action.is_empty() {
            return Err(ApiError::missing("X-TC-Action"));
        }
        let service = service.ok_or_else(|| {
            ApiError::new(
                "InvalidAction",
                "The service cannot be told from the Host header or the credential scope.",
            )
        })?;
        if !header(headers, "content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"))
        {
            return Err(ApiError::invalid(
                "Content-Type must be application/json for POST requests.",
            ));
        }
        let mut state = lock(&shared.state);
        let unsigned_sts = service == "sts" && header(headers, "authorization") == Some(auth::SKIP);
        let caller = if unsigned_sts {
            None
        } else {
            Some(auth::authenticate(&state, headers, body, service, now)?)
        };
        if let Some(caller) = &caller {
            record.secret_id = Some(caller.secret_id.clone());
            record.uin = Some(caller.uin.clone());
        }
        let version =
            header(headers, "x-tc-version").ok_or_else(|| ApiError::missing("X-TC-Version"))?;
        if version != version_of(service) {
            return Err(ApiError::new(
                "InvalidAction",
                format!(
                    "The action `{action}` is not found for version `{version}` of `{service}`."
                ),
            ));
        }
        let account = caller
            .as_ref()
            .map(|c| c.uin.as_str())
            .unwrap_or("anonymous");
        if !lock(&shared.limiter).admit(account, &action, rate_limit(&state.settings, service), now)
        {
            return Err(ApiError::new(
                "LimitExceeded.RateLimitExceeded",
                "Reached the API rate limit.",
            ));
        }
        if let Some(Failure::Code(code, message)) = plan.failure {
            return Err(ApiError::new(code, message));
        }
        let body = parsed
            .as_ref()
            .filter(|body| body.is_object())
            .ok_or_else(|| ApiError::invalid("The request body is not a JSON object."))?;
        dispatch(&mut state, service, &action, caller.as_ref(), body, now)
    })();

    let response = match result {
        Ok(mut out) => {
            record.outcome = "Success".into();
            out["RequestId"] = json!(request_id);
            json!({ "Response": out })
        }
        Err(error) => {
            record.outcome = error.code.clone();
            json!({ "Response": { "Error": { "Code": error.code, "Message": error.message }, "RequestId": request_id } })
        }
    };
    if plan.drop_after {
        record.outcome = format!("Dropped ({})", record.outcome);
        log_call(shared, record);
        return Err(DropConnection);
    }
    if let Some(malformed) = plan.malformed {
        record.outcome = format!("{} ({})", malformed.label(), record.outcome);
        if malformed == Malformed::MissingRequestId {
            record.request_id = None;
        }
        log_call(shared, record);
        return Ok(malformed_response(malformed, response));
    }
    log_call(shared, record);
    Ok(json_response(StatusCode::OK, &response))
}

/// The answer `{"Response":{...}}`, spoiled as `malformed` says; HTTP 200 and
/// `application/json` all the same.
fn malformed_response(malformed: Malformed, mut response: Value) -> HttpResponse {
    let body = match malformed {
        Malformed::InvalidJson => {
            // Cut in half (on a character boundary): an object that never closes.
            let text = response.to_string();
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            full(text[..cut].to_owned())
        }
        Malformed::MissingRequestId => {
            if let Some(inner) = response["Response"].as_object_mut() {
                inner.remove("RequestId");
            }
            full(response.to_string())
        }
        Malformed::HugeBody => {
            // `{"Padding":"xxx…","Response":{...}}`: still a valid answer, only too big.
            let prefix = Bytes::from_static(br#"{"Padding":""#);
            let suffix = Bytes::from(format!(r#"","Response":{}}}"#, response["Response"]));
            Either::Right(PaddedBody {
                padding: HUGE_BODY_BYTES.saturating_sub(prefix.len() + suffix.len()),
                prefix: Some(prefix),
                suffix: Some(suffix),
            })
        }
    };
    let mut http = Response::new(body);
    http.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    http
}

fn log_call(shared: &Shared, mut record: CallRecord) {
    let mut calls = lock(&shared.calls);
    record.seq = calls.len() as u64 + 1;
    tracing::debug!(action = %record.action, outcome = %record.outcome, "call");
    calls.push(record);
}

/// The request body with secret material replaced, for the call log.
fn redacted(body: &Value) -> Value {
    const SECRET_FIELDS: [&str; 3] = ["CertificatePrivateKey", "WebIdentityToken", "KeyPassword"];
    match body {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_FIELDS.contains(&k.as_str()) {
                        json!("<redacted>")
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn plain(status: StatusCode, text: &str) -> HttpResponse {
    let mut response = Response::new(full(format!("{text}\n")));
    *response.status_mut() = status;
    response
}

/// A load balancer's error page; with status 200, the page of a middlebox that does not
/// say so in the status (the text of nginx's stock `50x.html`).
fn html_error(status: u16) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let page = if status == StatusCode::OK {
        "<!DOCTYPE html>\n<html><head><title>Error</title></head><body><h1>An error occurred.</h1><p>Sorry, the page you are looking for is currently unavailable.<br/>Please try again later.</p></body></html>\n".to_owned()
    } else {
        let reason = status.canonical_reason().unwrap_or("Error");
        format!(
            "<html><head><title>{} {reason}</title></head><body><center><h1>{} {reason}</h1></center></body></html>",
            status.as_u16(),
            status.as_u16()
        )
    };
    let mut response = Response::new(full(page));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/html"));
    response
}

/// Admin endpoint:
/// - `GET  /admin/health`
/// - `GET  /admin/state`: the whole state as JSON
/// - `PUT  /admin/state`: replace the state (settings included) with a seed document
/// - `POST /admin/seed`: add to the state from a seed document
/// - `PUT  /admin/settings`: replace the settings
/// - `PUT  /admin/faults`: replace the fault configuration
/// - `POST /admin/modify`: apply a `ModifyHostsCertificate` body as the zone's owner,
///   without signature, limits or faults (drift made "in the console")
/// - `POST /admin/remove-host`: `{"zoneId","host"}` removes an acceleration domain
/// - `GET  /admin/calls[?action=A&since=N]`, `DELETE /admin/calls`
/// - `GET  /admin/counters`: calls by action and outcome
fn admin(shared: &Shared, method: &Method, path: &str, query: &str, body: &[u8]) -> HttpResponse {
    let result = admin_result(shared, method, path, query, body);
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err((status, message)) => json_response(status, &json!({ "error": message })),
    }
}

type AdminResult = Result<Value, (StatusCode, String)>;

fn bad_request(message: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.to_string())
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(body).map_err(bad_request)
}

fn admin_result(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> AdminResult {
    let params: BTreeMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    match (method.as_str(), path) {
        ("GET", "health") => Ok(json!({ "ok": true })),
        ("GET", "state") => serde_json::to_value(&*lock(&shared.state)).map_err(bad_request),
        ("PUT", "state") => {
            let seed: Seed = json_body(body)?;
            *lock(&shared.state) = State::from_seed(&seed).map_err(bad_request)?;
            // A new world starts with fresh rate-limit windows; the call log stays
            // until `DELETE /admin/calls`, so a test can still read what came before.
            *lock(&shared.limiter) = RateLimiter::default();
            Ok(json!({ "ok": true }))
        }
        ("POST", "seed") => {
            let seed: Seed = json_body(body)?;
            let mut state = lock(&shared.state);
            let mut next = state.clone();
            next.merge_seed(&seed).map_err(bad_request)?;
            *state = next;
            Ok(json!({ "ok": true }))
        }
        ("PUT", "settings") => {
            lock(&shared.state).settings = json_body(body)?;
            Ok(json!({ "ok": true }))
        }
        ("PUT", "faults") => {
            let faults: FaultConfig = json_body(body)?;
            faults.validate().map_err(bad_request)?;
            lock(&shared.state).faults = faults;
            Ok(json!({ "ok": true }))
        }
        ("POST", "modify") => {
            let request: Value = json_body(body)?;
            let mut state = lock(&shared.state);
            let zone_id = request["ZoneId"].as_str().unwrap_or_default();
            let owner = state
                .zones
                .get(zone_id)
                .map(|z| z.uin.clone())
                .ok_or_else(|| bad_request(format!("no zone {zone_id:?}")))?;
            let caller = Caller {
                secret_id: "admin".into(),
                uin: owner,
            };
            dispatch(
                &mut state,
                "teo",
                "ModifyHostsCertificate",
                Some(&caller),
                &request,
                now_millis(),
            )
            .map_err(|e| bad_request(format!("{}: {}", e.code, e.message)))
        }
        ("POST", "remove-host") => {
            let target: Value = json_body(body)?;
            let key = (
                target["zoneId"].as_str().unwrap_or_default().to_owned(),
                target["host"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            );
            match lock(&shared.state).domains.remove(&key) {
                Some(_) => Ok(json!({ "ok": true })),
                None => Err((
                    StatusCode::NOT_FOUND,
                    format!("no host {:?} in zone {:?}", key.1, key.0),
                )),
            }
        }
        ("GET", "calls") => {
            let since: u64 = params
                .get("since")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let calls = lock(&shared.calls);
            let selected: Vec<&CallRecord> = calls
                .iter()
                .filter(|c| c.seq > since && params.get("action").is_none_or(|a| *a == c.action))
                .collect();
            serde_json::to_value(selected).map_err(bad_request)
        }
        ("DELETE", "calls") => {
            lock(&shared.calls).clear();
            Ok(json!({ "ok": true }))
        }
        ("GET", "counters") => {
            let mut counters: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
            for call in lock(&shared.calls).iter() {
                *counters
                    .entry(call.action.clone())
                    .or_default()
                    .entry(call.outcome.clone())
                    .or_default() += 1;
            }
            serde_json::to_value(counters).map_err(bad_request)
        }
        _ => Err((
            StatusCode::NOT_FOUND,
            format!("no admin route {method} /admin/{path}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_host_then_scope_then_action() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "ssl.intl.tencentcloudapi.com".parse().unwrap());
        assert_eq!(route(&headers, "X"), Some("ssl"));
        headers.insert("host", "127.0.0.1:8080".parse().unwrap());
        assert_eq!(route(&headers, "AssumeRoleWithWebIdentity"), Some("sts"));
        assert_eq!(route(&headers, "X"), None);
        headers.insert(
            "authorization",
            "TC3-HMAC-SHA256 Credential=AKID/2024-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=00".parse().unwrap(),
        );
        assert_eq!(route(&headers, "X"), Some("teo"));
    }

    #[test]
    fn redaction_reaches_nested_fields() {
        let body = json!({"CertificatePublicKey": "pub", "CertificatePrivateKey": "secret", "Nested": [{"WebIdentityToken": "t"}]});
        let out = redacted(&body);
        assert_eq!(out["CertificatePrivateKey"], "<redacted>");
        assert_eq!(out["Nested"][0]["WebIdentityToken"], "<redacted>");
        assert_eq!(out["CertificatePublicKey"], "pub");
    }
}
