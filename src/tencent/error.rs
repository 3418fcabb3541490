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
}
