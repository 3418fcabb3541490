//! The one way the operator talks HTTP to Tencent Cloud: endpoints, TLS, timeouts, the
//! TC3 signature, the client-side rate limit, response parsing with a size cap, error
//! classification and retries of throttled answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::credentials::Credentials;
pub use super::error::CallError;
use super::error::{ApiError, ErrorClass};
use super::ratelimit::RateLimiter;
use super::sign::{self, SigningInput};

/// Larger response bodies are refused (DescribeAccelerationDomains with 200 domains is
/// well under 1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The `Authorization` value of unsigned calls (STS `AssumeRoleWithWebIdentity`).
pub const UNSIGNED: &str = "SKIP";

const CONTENT_TYPE_JSON: &str = "application/json";
const USER_AGENT: &str = concat!("edgeone-cert-operator/", env!("CARGO_PKG_VERSION"));

/// A Tencent Cloud API service the operator calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// EdgeOne.
    Teo,
    /// SSL Certificates.
    Ssl,
    /// Security Token Service.
    Sts,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Teo, Service::Ssl, Service::Sts];

    /// The service name of the host and the credential scope.
    pub fn name(self) -> &'static str {
        match self {
            Self::Teo => "teo",
            Self::Ssl => "ssl",
            Self::Sts => "sts",
        }
    }

    /// The `X-TC-Version` of the API the operator is written against.
    pub fn version(self) -> &'static str {
        match self {
            Self::Teo => "2022-09-01",
            Self::Ssl => "2019-12-05",
            Self::Sts => "2018-08-13",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Base URLs of the three services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub teo: String,
    pub ssl: String,
    pub sts: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            teo: "https://teo.tencentcloudapi.com".into(),
            ssl: "https://ssl.tencentcloudapi.com".into(),
            sts: "https://sts.tencentcloudapi.com".into(),
        }
    }
}

impl Endpoints {
    /// The international site (`*.intl.tencentcloudapi.com`).
    pub fn intl() -> Self {
        Self {
            teo: "https://teo.intl.tencentcloudapi.com".into(),
            ssl: "https://ssl.intl.tencentcloudapi.com".into(),
            sts: "https://sts.intl.tencentcloudapi.com".into(),
        }
    }

    /// One URL for all three services, as the emulator serves them.
    pub fn all(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            teo: url.clone(),
            ssl: url.clone(),
            sts: url,
        }
    }

    pub fn get(&self, service: Service) -> &str {
        match service {
            Service::Teo => &self.teo,
            Service::Ssl => &self.ssl,
            Service::Sts => &self.sts,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub endpoints: Endpoints,
    /// `X-TC-Region`; optional for teo and ssl.
    pub region: Option<String>,
    /// `X-TC-Language` (`zh-CN` or `en-US`) of error messages.
    pub language: Option<String>,
    pub connect_timeout: Duration,
    /// The whole request, from connecting to the last byte of the answer.
    pub request_timeout: Duration,
    /// Client-side limit per SecretId and action for `teo` actions (0: none).
    pub teo_rate_per_second: u32,
    /// Client-side limit per SecretId and action for `ssl` actions (0: none).
    pub ssl_rate_per_second: u32,
    /// Allows plain `http://` endpoints on hosts other than loopback. Only for private
    /// test setups: credentials-derived signatures and certificates travel in clear.
    pub allow_insecure_http: bool,
    /// How often a throttled answer is retried inside [`Transport::call`].
    pub max_throttle_retries: u32,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            endpoints: Endpoints::default(),
            region: None,
            language: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            teo_rate_per_second: 20,
            ssl_rate_per_second: 10,
            allow_insecure_http: false,
            max_throttle_retries: 3,
        }
    }
}

/// Why a [`Transport`] cannot be built; each names the setting to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("the {service} endpoint {url:?} is not usable: {reason}")]
    InvalidEndpoint {
        service: Service,
        url: String,
        reason: String,
    },
    #[error(
        "the {service} endpoint {url:?} uses plain http to a host that is not loopback; use https, or allow insecure http explicitly for a private test setup"
    )]
    InsecureEndpoint { service: Service, url: String },
    #[error("cannot build the HTTP client: {detail}")]
    Client { detail: String },
}

/// A successful answer: the `Response` object without `RequestId`, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    pub request_id: String,
    pub body: T,
}

#[derive(Debug, Clone)]
struct Target {
    url: reqwest::Url,
    /// `host[:port]` as sent in the `Host` header and signed.
    host: String,
}

/// Signs, rate-limits, sends and classifies Tencent Cloud API calls. Share one per
/// process (`Arc<Transport>`): its rate limiter is what keeps concurrent reconciles
/// under the API's limits.
#[derive(Debug)]
pub struct Transport {
    client: reqwest::Client,
    config: TransportConfig,
    targets: [Target; 3],
    limiter: RateLimiter,
    observer: Option<Arc<dyn CallObserver>>,
}

/// Told about every call's outcome (`Success`, the Tencent error code, or the kind of
/// failure) and duration, e.g. to count them in metrics.
pub trait CallObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, service: Service, action: &str, outcome: &str, elapsed: Duration);

    /// How long one attempt waited for the client-side rate limiter (zero included).
    fn rate_limited(&self, _service: Service, _action: &str, _waited: Duration) {}

    /// A throttled answer was received (it is retried inside the call, so `observe`
    /// sees only the final outcome).
    fn throttled(&self, _service: Service, _action: &str, _code: &str) {}
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    }
    if let Ok(v4) = host.parse::<std::net::Ipv4Addr>() {
        return v4.is_loopback();
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn target(config: &TransportConfig, service: Service) -> Result<Target, TransportError> {
    let raw = config.endpoints.get(service);
    let invalid = |reason: &str| TransportError::InvalidEndpoint {
        service,
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = reqwest::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" if config.allow_insecure_http => {
            tracing::warn!(
                %service,
                endpoint = %url,
                "plain http to a non-loopback Tencent Cloud endpoint: signed requests and certificates travel unencrypted"
            );
        }
        "http" => {
            return Err(TransportError::InsecureEndpoint {
                service,
                url: raw.to_owned(),
            });
        }
        _ => return Err(invalid("the scheme must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the URL are not supported"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "the API is served at `/`; give the URL without a path or query",
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| invalid("the URL has no host"))?;
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok(Target { url, host })
}

impl Transport {
    pub fn new(config: TransportConfig) -> Result<Self, TransportError> {
        let targets = [
            target(&config, Service::Teo)?,
            target(&config, Service::Ssl)?,
            target(&config, Service::Sts)?,
        ];
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(true)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // A signed request is never sent anywhere the configuration did not name.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| TransportError::Client {
                detail: error_chain(&e),
            })?;
        Ok(Self {
            client,
            config,
            targets,
            limiter: RateLimiter::new(),
            observer: None,
        })
    }

    /// Reports every call to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    /// The client-side rate limiter (its `total_wait` is a metric).
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    fn target(&self, service: Service) -> &Target {
        match service {
            Service::Teo => &self.targets[0],
            Service::Ssl => &self.targets[1],
            Service::Sts => &self.targets[2],
        }
    }

    fn rate(&self, service: Service) -> u32 {
        match service {
            Service::Teo => self.config.teo_rate_per_second,
            Service::Ssl => self.config.ssl_rate_per_second,
            Service::Sts => 0,
        }
    }

    /// Calls `action` of `service` with the configured region. `creds: None` sends the
    /// request unsigned (`Authorization: SKIP`), as STS web identity exchanges are.
    ///
    /// Throttled answers are retried here (up to `max_throttle_retries`, with jittered
    /// exponential backoff from 250 ms); every other error is returned at once for the
    /// caller to classify with [`CallError::class`].
    pub async fn call<Req, Resp>(
        &self,
        creds: Option<&Credentials>,
        service: Service,
        action: &str,
        request: &Req,
    ) -> Result<Reply<Resp>, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call_in_region(
            creds,
            service,
            self.config.region.as_deref(),
            action,
            request,
        )
        .await
    }

    /// [`call`](Self::call) with an explicit `X-TC-Region` (`None`: no region header).
    pub async fn call_in_region<Req, Resp>(
        &self,
        creds: Option<&Credentials>,
        service: Service,
        region: Option<&str>,
        action: &str,
        request: &Req,
    ) -> Result<Reply<Resp>, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let started = Instant::now();
        let result = self
            .call_with_retries(creds, service, region, action, request)
            .await;
        if let Some(observer) = &self.observer {
            let outcome = match &result {
                Ok(_) => "Success",
                Err(error) => error.kind_code(),
            };
            observer.observe(service, action, outcome, started.elapsed());
        }
        result
    }

    async fn call_with_retries<Req, Resp>(
        &self,
        creds: Option<&Credentials>,
        service: Service,
        region: Option<&str>,
        action: &str,
        request: &Req,
    ) -> Result<Reply<Resp>, CallError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let payload = serde_json::to_vec(request).map_err(|e| CallError::InvalidRequest {
            detail: format!("the {action} request cannot be encoded as JSON: {e}"),
        })?;
        let mut attempt = 0;
        let (status, request_id, response) = loop {
            match self
                .send_once(creds, service, region, action, &payload)
                .await
            {
                Err(error) if error.class() == ErrorClass::Throttled => {
                    if let Some(observer) = &self.observer {
                        observer.throttled(service, action, error.kind_code());
                    }
                    if attempt >= self.config.max_throttle_retries {
                        return Err(error);
                    }
                    let delay = backoff(attempt);
                    tracing::info!(
                        %service,
                        action,
                        attempt = attempt + 1,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "throttled by Tencent Cloud; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        let body = serde_json::from_value(Value::Object(response)).map_err(|e| {
            CallError::InvalidResponse {
                status,
                detail: format!(
                    "the {action} response (RequestId {request_id}) does not have the expected fields: {}",
                    safe_decode_error(&e)
                ),
            }
        })?;
        Ok(Reply { request_id, body })
    }

    /// One attempt: returns the HTTP status, the RequestId and the rest of `Response`.
    async fn send_once(
        &self,
        creds: Option<&Credentials>,
        service: Service,
        region: Option<&str>,
        action: &str,
        payload: &[u8],
    ) -> Result<(u16, String, Map<String, Value>), CallError> {
        let secret_id = creds.map(|c| c.secret_id.as_str()).unwrap_or_default();
        let waited = self
            .limiter
            .acquire(secret_id, action, self.rate(service))
            .await;
        if let Some(observer) = &self.observer {
            observer.rate_limited(service, action, waited);
        }
        let target = self.target(service);
        let timestamp = jiff::Timestamp::now().as_second();
        let authorization = match creds {
            Some(creds) => {
                let signed = [("content-type", CONTENT_TYPE_JSON), ("host", &target.host)];
                let input = SigningInput {
                    service: service.name(),
                    timestamp,
                    headers: &signed,
                    payload,
                };
                sign::authorize(&creds.secret_id, creds.secret_key(), &input).to_header_value()
            }
            None => UNSIGNED.to_owned(),
        };
        let header = |name: &str, value: &str, sensitive: bool| {
            let mut value = HeaderValue::from_str(value).map_err(|_| CallError::InvalidRequest {
                detail: format!(
                    "the {name} header of {action} contains characters that HTTP headers cannot carry"
                ),
            })?;
            value.set_sensitive(sensitive);
            Ok::<_, CallError>(value)
        };
        let mut request = self
            .client
            .post(target.url.clone())
            .header(HOST, header("Host", &target.host, false)?)
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON)
            .header("X-TC-Action", header("X-TC-Action", action, false)?)
            .header("X-TC-Version", service.version())
            .header("X-TC-Timestamp", timestamp.to_string())
            .header(
                AUTHORIZATION,
                header("Authorization", &authorization, true)?,
            );
        if let Some(region) = region {
            request = request.header("X-TC-Region", header("X-TC-Region", region, false)?);
        }
        if let Some(token) = creds.and_then(Credentials::token) {
            request = request.header("X-TC-Token", header("X-TC-Token", token, true)?);
        }
        if let Some(language) = &self.config.language {
            request = request.header("X-TC-Language", header("X-TC-Language", language, false)?);
        }

        let started = Instant::now();
        let network = |e: reqwest::Error| CallError::Network {
            detail: if e.is_timeout() {
                format!(
                    "{action} to {} timed out (connect timeout {:?}, request timeout {:?})",
                    target.host, self.config.connect_timeout, self.config.request_timeout
                )
            } else {
                format!("{action} to {}: {}", target.host, error_chain(&e))
            },
        };
        let mut response = request
            .body(payload.to_vec())
            .send()
            .await
            .map_err(network)?;
        let status = response.status().as_u16();
        // Which call got the unusable answer, from where.
        let in_call = |error: CallError| match error {
            CallError::InvalidResponse { status, detail } => CallError::InvalidResponse {
                status,
                detail: format!("{action} to {}: {detail}", target.host),
            },
            other => other,
        };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(in_call(too_large(status)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(in_call(too_large(status)));
            }
            body.extend_from_slice(&chunk);
        }
        let result = parse_envelope(status, &body).map_err(in_call);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok((_, request_id, _)) => {
                tracing::debug!(%service, action, request_id, status, elapsed_ms, "Tencent Cloud call")
            }
            Err(error) => tracing::debug!(
                %service,
                action,
                status,
                elapsed_ms,
                error = %error,
                "Tencent Cloud call failed"
            ),
        }
        result
    }
}

/// 250 ms × 2^attempt, ± 50 %.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(250) * 2u32.saturating_pow(attempt.min(16));
    base.mul_f64(rand::rng().random_range(0.5..=1.5))
}

fn too_large(status: u16) -> CallError {
    CallError::InvalidResponse {
        status,
        detail: format!(
            "the response body exceeds {} MiB",
            MAX_RESPONSE_BYTES / (1024 * 1024)
        ),
    }
}

/// An error and its sources, `a: b: c`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A decoding error without the offending value (which may be a secret, e.g. in an STS
/// answer).
fn safe_decode_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = error.to_string();
    match error.classify() {
        Category::Eof => format!(
            "truncated: the body ends at line {} column {} before the JSON is complete",
            error.line(),
            error.column()
        ),
        // serde_json's syntax messages name the position, never a value.
        Category::Syntax => text,
        // Names a field or variant, not a value.
        _ if text.starts_with("missing field") || text.starts_with("unknown variant") => text,
        _ => format!(
            "a value has the wrong type (line {} column {})",
            error.line(),
            error.column()
        ),
    }
}

/// At most `MAX` characters of the text in a non-JSON body: tags dropped, whitespace and
/// control characters collapsed.
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 120;
    let head = &body[..body.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let mut plain = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_control() || c.is_whitespace() => plain.push(' '),
            c => plain.push(c),
        }
    }
    let words: Vec<&str> = plain.split_whitespace().collect();
    let collapsed = words.join(" ");
    if collapsed.chars().count() > MAX {
        let cut: String = collapsed.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        collapsed
    }
}

/// Splits `{"Response":{..., "RequestId"}}` into the RequestId and the rest, or the
/// error it carries.
fn parse_envelope(
    status: u16,
    body: &[u8],
) -> Result<(u16, String, Map<String, Value>), CallError> {
    let invalid = |detail: String| CallError::InvalidResponse { status, detail };
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            let trimmed = body.trim_ascii_start();
            return Err(invalid(if trimmed.is_empty() {
                "an empty body".to_owned()
            } else if trimmed.starts_with(b"{") {
                format!("invalid JSON ({})", safe_decode_error(&e))
            } else {
                format!("not JSON: {:?}", snippet(body))
            }));
        }
    };
    let Some(Value::Object(mut response)) = (match value {
        Value::Object(mut outer) => outer.remove("Response"),
        _ => None,
    }) else {
        return Err(invalid("JSON without a `Response` object".to_owned()));
    };
    let request_id = match response.remove("RequestId") {
        Some(Value::String(id)) if !id.is_empty() => id,
        _ => return Err(invalid("a `Response` without a `RequestId`".to_owned())),
    };
    if let Some(error) = response.remove("Error") {
        let code = error
            .get("Code")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "an `Error` without a `Code` (RequestId {request_id})"
                ))
            })?;
        let message = error.get("Message").and_then(Value::as_str).unwrap_or("");
        return Err(CallError::Api(ApiError {
            code: code.to_owned(),
            message: message.to_owned(),
            request_id,
        }));
    }
    if !(200..300).contains(&status) {
        return Err(invalid(format!(
            "a success body with an error status (RequestId {request_id})"
        )));
    }
    Ok((status, request_id, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> TransportConfig {
        TransportConfig {
            endpoints: Endpoints::all(url),
            ..TransportConfig::default()
        }
    }

    #[test]
    fn endpoints_are_checked() {
        for ok in [
            "https://teo.tencentcloudapi.com",
            "https://teo.tencentcloudapi.com/",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(Transport::new(config(ok)).is_ok(), "{ok}");
        }
        for (bad, what) in [
            ("http://teo.example.com", "plain http"),
            ("ftp://teo.tencentcloudapi.com", "scheme"),
            ("https://teo.tencentcloudapi.com/v3", "path"),
            ("https://teo.tencentcloudapi.com/?a=1", "path or query"),
            ("https://u:p@teo.tencentcloudapi.com", "credentials"),
            ("not a url", "not usable"),
        ] {
            let error = Transport::new(config(bad)).unwrap_err().to_string();
            assert!(error.contains(what), "{bad}: {error}");
        }
        let insecure = TransportConfig {
            allow_insecure_http: true,
            ..config("http://teo.example.com")
        };
        assert!(Transport::new(insecure).is_ok());
    }

    #[test]
    fn host_header_is_host_and_explicit_port() {
        let transport = Transport::new(TransportConfig {
            endpoints: Endpoints {
                teo: "https://teo.tencentcloudapi.com:443".into(),
                ssl: "https://ssl.example.com:8443".into(),
                sts: "http://[::1]:9000".into(),
            },
            ..TransportConfig::default()
        })
        .unwrap();
        assert_eq!(
            transport.target(Service::Teo).host,
            "teo.tencentcloudapi.com"
        );
        assert_eq!(transport.target(Service::Ssl).host, "ssl.example.com:8443");
        assert_eq!(transport.target(Service::Sts).host, "[::1]:9000");
    }

    #[test]
    fn envelopes() {
        let (_, id, rest) =
            parse_envelope(200, br#"{"Response":{"TotalCount":1,"RequestId":"r1"}}"#).unwrap();
        assert_eq!(id, "r1");
        assert_eq!(rest["TotalCount"], 1);
        assert!(!rest.contains_key("RequestId"));

        let error = parse_envelope(
            200,
            br#"{"Response":{"Error":{"Code":"InternalError","Message":"m"},"RequestId":"r2"}}"#,
        )
        .unwrap_err();
        assert_eq!(error.code(), Some("InternalError"));
        assert_eq!(error.request_id(), Some("r2"));

        let cases: [(u16, &[u8], &str); 7] = [
            (
                503,
                b"<html><head><title>503 Service Unavailable</title></head></html>",
                "not JSON: \"503 Service Unavailable\"",
            ),
            (200, b"", "an empty body"),
            (
                200,
                b"{\"Response\":{\"Request",
                "invalid JSON (truncated: the body ends at line 1 column 21",
            ),
            (
                200,
                b"{\"Response\":{\"RequestId\" \"s3cr3t\"}}",
                "invalid JSON (expected `:` at line 1 column 26)",
            ),
            (200, b"[1]", "without a `Response`"),
            (200, br#"{"Response":{}}"#, "without a `RequestId`"),
            (
                502,
                br#"{"Response":{"RequestId":"x"}}"#,
                "success body with an error status",
            ),
        ];
        for (status, body, expected) in cases {
            let error = parse_envelope(status, body).unwrap_err();
            let CallError::InvalidResponse { status: s, detail } = &error else {
                panic!("{error:?}");
            };
            assert_eq!(*s, status);
            assert!(detail.contains(expected), "{detail}");
            assert!(!detail.contains("s3cr3t"), "{detail}");
        }
    }

    #[test]
    fn snippets_are_short_and_plain() {
        let long = format!("<p>{}</p>\n\u{7}", "x".repeat(500));
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), 121);
        assert!(!s.contains('<') && !s.contains('\u{7}'));
    }

    #[test]
    fn decode_errors_do_not_echo_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Creds {
            token: u32,
        }
        let e = serde_json::from_str::<Creds>(r#"{"token":"s3cr3t"}"#).unwrap_err();
        assert!(!safe_decode_error(&e).contains("s3cr3t"));
        let e = serde_json::from_str::<Creds>("{}").unwrap_err();
        assert!(safe_decode_error(&e).contains("missing field `token`"));
    }

    #[test]
    fn backoff_is_jittered_around_the_exponential() {
        for attempt in 0..4 {
            let base = 250.0 * f64::from(1u32 << attempt);
            for _ in 0..50 {
                let ms = backoff(attempt).as_secs_f64() * 1000.0;
                assert!(ms >= base * 0.5 - 1e-6 && ms <= base * 1.5 + 1e-6, "{ms}");
            }
        }
    }

    #[test]
    fn services() {
        let names: Vec<_> = Service::ALL
            .iter()
            .map(|s| (s.name(), s.version()))
            .collect();
        assert_eq!(
            names,
            [
                ("teo", "2022-09-01"),
                ("ssl", "2019-12-05"),
                ("sts", "2018-08-13")
            ]
        );
    }
}
