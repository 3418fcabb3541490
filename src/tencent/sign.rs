//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0.
//!
//! The same functions sign the operator's requests and verify them in the emulator, so
//! the canonical form is written once. The published worked example in the tests below
//! keeps it honest against Tencent's own documentation.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

/// Everything a signature covers, borrowed from the request being signed or checked.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    /// Cloud service name as it appears in the credential scope (`teo`, `ssl`, `sts`).
    pub service: &'a str,
    /// Unix seconds, the value of `X-TC-Timestamp`.
    pub timestamp: i64,
    /// Headers to sign, as `(name, value)`; names in any case, in any order.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// The pieces of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub secret_id: String,
    /// `YYYY-MM-DD` (UTC) from the credential scope.
    pub date: String,
    pub service: String,
    /// Lower-case header names joined by `;`, sorted.
    pub signed_headers: String,
    pub signature: String,
}

impl Authorization {
    pub fn to_header_value(&self) -> String {
        format!(
            "{ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
            self.secret_id, self.date, self.service, self.signed_headers, self.signature
        )
    }

    /// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`.
    /// Returns `None` for anything else, which a server reports as a malformed signature.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix(ALGORITHM)?.trim_start();
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, val) = part.trim().split_once('=')?;
            match key {
                "Credential" => credential = Some(val),
                "SignedHeaders" => signed_headers = Some(val),
                "Signature" => signature = Some(val),
                _ => return None,
            }
        }
        let mut scope = credential?.split('/');
        let (secret_id, date, service, terminator) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        if terminator != "tc3_request" || scope.next().is_some() || secret_id.is_empty() {
            return None;
        }
        Some(Self {
            secret_id: secret_id.to_owned(),
            date: date.to_owned(),
            service: service.to_owned(),
            signed_headers: signed_headers?.to_owned(),
            signature: signature?.to_owned(),
        })
    }
}

/// `YYYY-MM-DD` in UTC for a Unix timestamp, the date of the credential scope.
pub fn scope_date(timestamp: i64) -> String {
    jiff::Timestamp::from_second(timestamp)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%d")
        .to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Lower-cased, trimmed, sorted headers: `(canonical header lines, signed header names)`.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut lower: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    lower.sort();
    let lines = lower.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let names = lower
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (lines, names)
}

/// The canonical request of a `POST /` with an empty query string.
pub fn canonical_request(input: &SigningInput<'_>) -> String {
    let (lines, names) = canonical_headers(input.headers);
    format!("POST\n/\n\n{lines}\n{names}\n{}", sha256_hex(input.payload))
}

pub fn string_to_sign(input: &SigningInput<'_>) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}/{}/tc3_request\n{}",
        input.timestamp,
        scope_date(input.timestamp),
        input.service,
        sha256_hex(canonical_request(input).as_bytes())
    )
}

/// Hex signature: the key chain HMAC("TC3"+key, date) → service → "tc3_request".
pub fn signature(secret_key: &str, input: &SigningInput<'_>) -> String {
    let date_key = hmac_sha256(
        format!("TC3{secret_key}").as_bytes(),
        scope_date(input.timestamp).as_bytes(),
    );
    let service_key = hmac_sha256(&date_key, input.service.as_bytes());
    let signing_key = hmac_sha256(&service_key, b"tc3_request");
    hex::encode(hmac_sha256(&signing_key, string_to_sign(input).as_bytes()))
}

/// The complete `Authorization` for a request.
pub fn authorize(secret_id: &str, secret_key: &str, input: &SigningInput<'_>) -> Authorization {
    Authorization {
        secret_id: secret_id.to_owned(),
        date: scope_date(input.timestamp),
        service: input.service.to_owned(),
        signed_headers: canonical_headers(input.headers).1,
        signature: signature(secret_key, input),
    }
}

/// Compares two hex signatures in time independent of where they differ.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tencent Cloud's published worked example for TC3-HMAC-SHA256 (API 3.0 signature
    // documentation). The asterisks and the `\u` escapes are literal characters.
    const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";
    const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3*******";
    const PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const HEADERS: &[(&str, &str)] = &[
        ("Content-Type", "application/json; charset=utf-8"),
        ("Host", "cvm.tencentcloudapi.com"),
    ];

    fn example() -> SigningInput<'static> {
        SigningInput {
            service: "cvm",
            timestamp: 1551113065,
            headers: HEADERS,
            payload: PAYLOAD.as_bytes(),
        }
    }

    #[test]
    fn worked_example_canonical_request() {
        let canonical = canonical_request(&example());
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
    }

    #[test]
    fn worked_example_signature_and_header() {
        let auth = authorize(SECRET_ID, SECRET_KEY, &example());
        assert_eq!(
            auth.signature,
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        assert_eq!(
            auth.to_header_value(),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
        assert_eq!(Authorization::parse(&auth.to_header_value()), Some(auth));
    }

    #[test]
    fn header_order_and_case_do_not_change_the_signature() {
        let shuffled = [
            ("HOST", "cvm.tencentcloudapi.com"),
            ("content-type", " application/json; charset=utf-8 "),
        ];
        let input = SigningInput {
            headers: &shuffled,
            ..example()
        };
        assert_eq!(
            signature(SECRET_KEY, &input),
            signature(SECRET_KEY, &example())
        );
    }

    #[test]
    fn any_change_to_signed_content_changes_the_signature() {
        let base = signature(SECRET_KEY, &example());
        let later = SigningInput {
            timestamp: 1551113066,
            ..example()
        };
        let other_service = SigningInput {
            service: "teo",
            ..example()
        };
        let other_body = SigningInput {
            payload: b"{}",
            ..example()
        };
        for changed in [later, other_service, other_body] {
            assert_ne!(signature(SECRET_KEY, &changed), base);
        }
        assert_ne!(signature("another key", &example()), base);
    }

    #[test]
    fn parse_rejects_malformed_headers() {
        for bad in [
            "",
            "HMAC-SHA1 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=00",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm, SignedHeaders=host, Signature=00",
            "TC3-HMAC-SHA256 Credential=/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=00",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=host",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, Extra=1, SignedHeaders=host, Signature=00",
        ] {
            assert_eq!(Authorization::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn signature_comparison() {
        assert!(signatures_equal("abcd", "abcd"));
        assert!(!signatures_equal("abcd", "abce"));
        assert!(!signatures_equal("abcd", "abc"));
    }

    #[test]
    fn scope_date_is_utc() {
        assert_eq!(scope_date(1551113065), "2019-02-25");
        assert_eq!(scope_date(0), "1970-01-01");
    }
}

/// Properties of the canonicalization and the header format over arbitrary input.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        // Distinct names (as lower case), printable values.
        proptest::collection::btree_map("[a-z][a-z0-9-]{0,11}", "[ -~]{0,24}", 1..6)
            .prop_map(|m| m.into_iter().collect())
    }

    fn sign(headers: &[(String, String)], payload: &[u8], key: &str) -> String {
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        signature(
            key,
            &SigningInput {
                service: "teo",
                timestamp: 1_700_000_000,
                headers: &borrowed,
                payload,
            },
        )
    }

    proptest! {
        /// Header order, name case and surrounding blanks do not change the canonical
        /// request, so client and server agree however each builds its header list.
        #[test]
        fn header_order_case_and_blanks_do_not_matter(
            headers in headers(),
            payload in vec(any::<u8>(), 0..64),
            rotate in 0usize..6,
        ) {
            let mut other: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (format!(" {} ", k.to_ascii_uppercase()), format!("  {v} ")))
                .collect();
            let n = other.len();
            other.rotate_left(rotate % n);
            prop_assert_eq!(sign(&headers, &payload, "k"), sign(&other, &payload, "k"));
        }

        /// The canonical request lists the headers sorted, and names them in the same
        /// order in the signed-header list.
        #[test]
        fn canonical_headers_are_sorted_and_named_in_order(headers in headers()) {
            let borrowed: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (lines, names) = canonical_headers(&borrowed);
            let line_names: Vec<&str> =
                lines.lines().map(|l| l.split_once(':').map_or(l, |(k, _)| k)).collect();
            let mut sorted = line_names.clone();
            sorted.sort();
            prop_assert_eq!(&line_names, &sorted);
            prop_assert_eq!(names, line_names.join(";"));
        }

        /// Any change to the payload or the key changes the signature.
        #[test]
        fn payload_and_key_are_covered(
            headers in headers(),
            payload in vec(any::<u8>(), 1..64),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut changed = payload.clone();
            let i = at.index(changed.len());
            changed[i] ^= flip;
            prop_assert_ne!(sign(&headers, &payload, "k"), sign(&headers, &changed, "k"));
            prop_assert_ne!(sign(&headers, &payload, "k"), sign(&headers, &payload, "k2"));
        }

        /// An Authorization header parses back to what was written.
        #[test]
        fn authorization_round_trips(
            secret_id in "[A-Za-z0-9]{1,40}",
            service in "[a-z]{2,8}",
            names in "[a-z-]{1,10}(;[a-z-]{1,10}){0,3}",
            signature in "[0-9a-f]{64}",
            timestamp in 0i64..4_000_000_000,
        ) {
            let auth = Authorization {
                secret_id,
                date: scope_date(timestamp),
                service,
                signed_headers: names,
                signature,
            };
            prop_assert_eq!(Authorization::parse(&auth.to_header_value()), Some(auth));
        }

        /// Parsing arbitrary header values never panics.
        #[test]
        fn parse_never_panics(value in "\\PC{0,200}") {
            let _ = Authorization::parse(&value);
            let _ = Authorization::parse(&format!("{ALGORITHM} {value}"));
        }
    }
}
