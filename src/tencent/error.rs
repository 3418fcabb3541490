//! Errors of Tencent Cloud API calls, and the class that decides what a caller does
//! with each: wait and retry, retry with backoff, fix credentials, or fix the spec.

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The API's rate limit was hit: slow down, then retry.
    Throttled,
    /// A transient condition on Tencent's side or the network: retry with backoff.
    Retryable,
    /// The credentials are wrong, expired or not allowed: nothing changes until they do.
    Auth,
    /// The request itself is wrong for this account (spec, zone, host, certificate):
    /// nothing changes until the spec or the account does.
    Terminal,
}

impl ErrorClass {
    /// Classifies a Tencent error code as DESIGN.md lists them.
    pub fn of_code(code: &str) -> Self {
        const RETRYABLE_EXACT: [&str; 4] = [
            "InvalidParameter.ActionInProgress",
            "ResourceInUse",
            "OperationDenied.DisableZoneNotCompleted",
            "InvalidParameter.ZoneIsGrayPublishing",
        ];
        if code.starts_with("RequestLimitExceeded") || code == "LimitExceeded.RateLimitExceeded" {
            Self::Throttled
        } else if code.starts_with("InternalError")
            || code.ends_with(".ConfigLocked")
            || RETRYABLE_EXACT.contains(&code)
        {
            Self::Retryable
        } else if code.starts_with("AuthFailure") || code.starts_with("UnauthorizedOperation") {
            Self::Auth
        } else {
            Self::Terminal
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Retryable)
    }
}

/// An error answer of the API: `{"Response":{"Error":{"Code","Message"},"RequestId"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message} (RequestId {request_id})")]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl ApiError {
    pub fn class(&self) -> ErrorClass {
        ErrorClass::of_code(&self.code)
    }
}

/// Why a call to the Tencent Cloud API did not produce an answer the caller can use.
///
/// Every variant's message says what to do about it; [`CallError::class`] tells a caller
/// whether to wait, retry, fix the credentials or fix the spec.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The API answered with an error (`{"Response":{"Error":{...}}}`).
    #[error(transparent)]
    Api(ApiError),
    /// The answer was not a Tencent Cloud API response: an HTML error page from a load
    /// balancer, truncated or invalid JSON, a missing `RequestId`, a body over the size
    /// cap. `status` is the HTTP status code.
    #[error(
        "unexpected answer from the Tencent Cloud API (HTTP {status}): {detail}; {}",
        invalid_response_hint(*status)
    )]
    InvalidResponse { status: u16, detail: String },
    /// No answer: connection refused or reset, DNS, TLS, or a timeout.
    #[error(
        "network error calling the Tencent Cloud API: {detail}; check connectivity to the endpoint (the call is retried)"
    )]
    Network { detail: String },
    /// Credentials could not be obtained.
    #[error(transparent)]
    Credentials(Box<crate::tencent::credentials::CredentialsError>),
    /// The request could not be built (a caller's mistake, not the API's).
    #[error("invalid request: {detail}")]
    InvalidRequest { detail: String },
}

fn invalid_response_hint(status: u16) -> &'static str {
    match status {
        500..=599 | 408 => "the service is unavailable; the call is retried",
        429 => "the endpoint is throttling requests; the call is retried later",
        _ => "check that the endpoint URL points at the Tencent Cloud API",
    }
}

impl CallError {
    /// What a caller should do about the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api(error) => error.class(),
            Self::InvalidResponse { status, .. } => match status {
                429 => ErrorClass::Throttled,
                500..=599 | 408 => ErrorClass::Retryable,
                _ => ErrorClass::Terminal,
            },
            Self::Network { .. } => ErrorClass::Retryable,
            Self::Credentials(error) => error.class(),
            Self::InvalidRequest { .. } => ErrorClass::Terminal,
        }
    }

    /// The API error, when the API answered with one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }

    /// The Tencent error code (`ResourceUnavailable.ZoneNotFound`), when there is one.
    pub fn code(&self) -> Option<&str> {
        self.api_error().map(|e| e.code.as_str())
    }

    /// The Tencent error code, or the kind of failure for errors the API did not answer
    /// (`InvalidResponse`, `NetworkError`, `CredentialsUnavailable`, `InvalidRequest`).
    pub fn kind_code(&self) -> &str {
        match self {
            Self::Api(error) => &error.code,
            Self::InvalidResponse { .. } => "InvalidResponse",
            Self::Network { .. } => "NetworkError",
            Self::Credentials(_) => "CredentialsUnavailable",
            Self::InvalidRequest { .. } => "InvalidRequest",
        }
    }

    /// The `RequestId` of the answer, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        self.api_error().map(|e| e.request_id.as_str())
    }
}

impl From<ApiError> for CallError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<crate::tencent::credentials::CredentialsError> for CallError {
    fn from(error: crate::tencent::credentials::CredentialsError) -> Self {
        Self::Credentials(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_design() {
        use ErrorClass::*;
        let table = [
            ("RequestLimitExceeded", Throttled),
            ("RequestLimitExceeded.UinLimitExceeded", Throttled),
            ("LimitExceeded.RateLimitExceeded", Throttled),
            ("InternalError", Retryable),
            ("InternalError.ProxyServer", Retryable),
            ("InvalidParameter.ActionInProgress", Retryable),
            ("ResourceInUse", Retryable),
            ("InternalError.ConfigLocked", Retryable),
            ("OperationDenied.ConfigLocked", Retryable),
            ("OperationDenied.DisableZoneNotCompleted", Retryable),
            ("InvalidParameter.ZoneIsGrayPublishing", Retryable),
            ("AuthFailure.SignatureFailure", Auth),
            ("AuthFailure.SecretIdNotFound", Auth),
            ("UnauthorizedOperation.CamUnauthorized", Auth),
            ("ResourceUnavailable.ZoneNotFound", Terminal),
            ("InvalidParameter.CertNotMatchDomain", Terminal),
            ("LimitExceeded", Terminal),
            ("FailedOperation.CertificateHasExpired", Terminal),
            ("SomethingNew.Unknown", Terminal),
        ];
        for (code, class) in table {
            assert_eq!(ErrorClass::of_code(code), class, "{code}");
        }
        assert!(Throttled.is_retryable() && Retryable.is_retryable());
        assert!(!Auth.is_retryable() && !Terminal.is_retryable());
    }

    #[test]
    fn display_names_code_message_and_request_id() {
        let error = ApiError {
            code: "ResourceUnavailable.HostNotFound".into(),
            message: "The domain name does not exist.".into(),
            request_id: "5e5a0d0f-52f3-4bad-9bd3-dcf1d5c954e7".into(),
        };
        assert_eq!(error.class(), ErrorClass::Terminal);
        assert_eq!(
            error.to_string(),
            "ResourceUnavailable.HostNotFound: The domain name does not exist. (RequestId 5e5a0d0f-52f3-4bad-9bd3-dcf1d5c954e7)"
        );
    }

    #[test]
    fn call_error_classes() {
        let api = |code: &str| {
            CallError::Api(ApiError {
                code: code.into(),
                message: "m".into(),
                request_id: "r".into(),
            })
        };
        let invalid = |status| CallError::InvalidResponse {
            status,
            detail: "x".into(),
        };
        assert_eq!(
            api("ResourceUnavailable.ZoneNotFound").class(),
            ErrorClass::Terminal
        );
        assert_eq!(
            api("AuthFailure.SignatureFailure").class(),
            ErrorClass::Auth
        );
        assert_eq!(api("InternalError").class(), ErrorClass::Retryable);
        assert_eq!(invalid(503).class(), ErrorClass::Retryable);
        assert_eq!(invalid(502).class(), ErrorClass::Retryable);
        assert_eq!(invalid(429).class(), ErrorClass::Throttled);
        assert_eq!(invalid(200).class(), ErrorClass::Terminal);
        assert_eq!(invalid(404).class(), ErrorClass::Terminal);
        let network = CallError::Network {
            detail: "timed out".into(),
        };
        assert_eq!(network.class(), ErrorClass::Retryable);
        assert_eq!(api("X.Y").code(), Some("X.Y"));
        assert_eq!(api("X.Y").request_id(), Some("r"));
        assert_eq!(network.code(), None);
        assert_eq!(api("X.Y").to_string(), "X.Y: m (RequestId r)");
        assert!(invalid(503).to_string().contains("HTTP 503"));
    }
}
