//! Tencent Cloud API errors as the emulator returns them: HTTP 200 with
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn missing(parameter: &str) -> Self {
        Self::new(
            "MissingParameter",
            format!("The request is missing a required parameter `{parameter}`."),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameter", message)
    }

    /// Maps a body that does not fit the action's request model to the code the real
    /// API uses for it.
    pub fn from_body_error(error: &serde_json::Error) -> Self {
        let text = error.to_string();
        let quoted = text.split('`').nth(1).unwrap_or_default();
        if text.starts_with("unknown field") {
            Self::new(
                "UnknownParameter",
                format!("The parameter `{quoted}` is not recognized."),
            )
        } else if text.starts_with("missing field") {
            Self::missing(quoted)
        } else {
            Self::invalid(format!(
                "The request body does not match the action's parameters: {text}"
            ))
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "PascalCase")]
    #[allow(dead_code)]
    struct Req {
        zone_id: String,
        limit: Option<u32>,
    }

    fn code_for(body: &str) -> ApiError {
        ApiError::from_body_error(&serde_json::from_str::<Req>(body).unwrap_err())
    }

    #[test]
    fn body_errors_map_to_tencent_codes() {
        let unknown = code_for(r#"{"ZoneId":"z","Bogus":1}"#);
        assert_eq!(
            (unknown.code.as_str(), unknown.message.as_str()),
            (
                "UnknownParameter",
                "The parameter `Bogus` is not recognized."
            )
        );
        let missing = code_for(r#"{"Limit":1}"#);
        assert_eq!(
            (missing.code.as_str(), missing.message.as_str()),
            (
                "MissingParameter",
                "The request is missing a required parameter `ZoneId`."
            )
        );
        assert_eq!(
            code_for(r#"{"ZoneId":"z","Limit":"x"}"#).code,
            "InvalidParameter"
        );
    }
}
