//! Reading a compact JWS before any key is touched: exactly three
//! base64url segments, JSON objects without duplicate keys, and a header
//! that asks for nothing this proxy refuses. Also rebuilds the header Entra
//! really signed for Graph tokens that carry a `nonce`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::AuthError;

/// A token split into its parts, with header and payload decoded.
pub struct Jws<'a> {
    pub payload_b64: &'a str,
    pub signature_b64: &'a str,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
}

/// What the header says, read from its raw JSON.
pub struct HeaderFields {
    pub alg: String,
    pub kid: Option<String>,
    /// The nonce's value and where its JSON string sits in the header.
    pub nonce: Option<(String, Range<usize>)>,
}

impl<'a> Jws<'a> {
    /// Splits and decodes a token; refuses anything but a three-part JWS.
    pub fn split(token: &'a str) -> Result<Self, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::NotJws);
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(AuthError::NotJws);
        }
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| AuthError::BadBase64)
        };
        decode(signature)?;
        Ok(Self {
            payload_b64: payload,
            signature_b64: signature,
            header: decode(header)?,
            payload: decode(payload)?,
        })
    }

    /// Reads the header fields, refusing duplicate keys and key material
    /// or extensions the token brings along.
    pub fn header_fields(&self) -> Result<HeaderFields, AuthError> {
        let entries = object_entries(&self.header)?;
        let text = |raw: &RawValue| -> Result<String, AuthError> {
            serde_json::from_str::<String>(raw.get())
                .map_err(|_| AuthError::BadJson)
        };

        let mut fields = HeaderFields {
            alg: String::new(),
            kid: None,
            nonce: None,
        };
        let mut has_alg = false;
        for (key, raw) in entries {
            match key.as_ref() {
                "alg" => {
                    fields.alg = text(raw)?;
                    has_alg = true;
                }
                "kid" => fields.kid = Some(text(raw)?),
                "nonce" => {
                    let start = raw.get().as_ptr() as usize
                        - self.header.as_ptr() as usize;
                    let span = start..start + raw.get().len();
                    fields.nonce = Some((text(raw)?, span));
                }
                "jku" | "x5u" | "jwk" => return Err(AuthError::EmbeddedKey),
                "crit" => return Err(AuthError::CriticalHeader),
                _ => {}
            }
        }
        if !has_alg {
            return Err(AuthError::BadJson);
        }
        Ok(fields)
    }

    /// Refuses a payload that is not a JSON object or repeats a key: two
    /// readers could otherwise see two different values for one claim.
    pub fn check_payload(&self) -> Result<(), AuthError> {
        object_entries(&self.payload).map(|_| ())
    }
}

/// The token Entra signed for a header carrying `nonce`: the same header
/// bytes with only the nonce's value replaced by the base64url SHA-256 of
/// it, then the original payload and signature.
pub fn nonce_signed_token(
    jws: &Jws<'_>,
    nonce: &str,
    span: &Range<usize>,
) -> String {
    let hashed = digest::digest(&digest::SHA256, nonce.as_bytes());
    let replacement = format!("\"{}\"", URL_SAFE_NO_PAD.encode(hashed));
    let mut header = Vec::with_capacity(jws.header.len() + 16);
    header.extend_from_slice(&jws.header[..span.start]);
    header.extend_from_slice(replacement.as_bytes());
    header.extend_from_slice(&jws.header[span.end..]);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        jws.payload_b64,
        jws.signature_b64
    )
}

type Entries<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// The top-level members of a JSON object in order, refusing duplicates.
fn object_entries(json: &[u8]) -> Result<Entries<'_>, AuthError> {
    struct EntriesVisitor;

    impl<'de> Visitor<'de> for EntriesVisitor {
        type Value = Entries<'de>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut entries: Entries<'de> = Vec::new();
            while let Some((key, value)) =
                map.next_entry::<Cow<'de, str>, &'de RawValue>()?
            {
                if entries.iter().any(|(k, _)| *k == key) {
                    return Err(serde::de::Error::custom("duplicate key"));
                }
                entries.push((key, value));
            }
            Ok(entries)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(json);
    let entries = de.deserialize_map(EntriesVisitor).map_err(|e| {
        if e.to_string().starts_with("duplicate key") {
            AuthError::DuplicateKey
        } else {
            AuthError::BadJson
        }
    })?;
    de.end().map_err(|_| AuthError::BadJson)?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn jws(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    #[test]
    fn only_three_part_tokens_are_read() {
        for token in ["a.b", "a.b.c.d", "a.b.c.d.e", "..", "a..c", ".b.c"] {
            assert!(matches!(Jws::split(token), Err(AuthError::NotJws)));
        }
        assert!(matches!(Jws::split("a+b.c.d"), Err(AuthError::BadBase64)));
        assert!(matches!(
            Jws::split("YQ==.Yg.Yw"),
            Err(AuthError::BadBase64)
        ));
    }

    #[test]
    fn duplicate_keys_are_refused_in_header_and_payload() {
        let token = jws(r#"{"alg":"RS256","alg":"none"}"#, "{}");
        let parsed = Jws::split(&token).expect("splits");
        assert!(matches!(
            parsed.header_fields(),
            Err(AuthError::DuplicateKey)
        ));

        let token = jws(r#"{"alg":"RS256"}"#, r#"{"tid":"a","tid":"b"}"#);
        let parsed = Jws::split(&token).expect("splits");
        assert!(matches!(
            parsed.check_payload(),
            Err(AuthError::DuplicateKey)
        ));

        let token = jws(r#"{"alg":"RS256"}"#, r#"["not","an","object"]"#);
        let parsed = Jws::split(&token).expect("splits");
        assert!(matches!(parsed.check_payload(), Err(AuthError::BadJson)));
    }

    #[test]
    fn nonce_is_replaced_byte_exactly() {
        let header = "{ \"typ\":\"JWT\",\n \"nonce\" : \"abc\\/def\", \"alg\":\"RS256\"}";
        let token = jws(header, "{}");
        let parsed = Jws::split(&token).expect("splits");
        let fields = parsed.header_fields().expect("fields");
        let (nonce, span) = fields.nonce.expect("nonce");
        assert_eq!(nonce, "abc/def");

        let signed = nonce_signed_token(&parsed, &nonce, &span);
        let new_header = URL_SAFE_NO_PAD
            .decode(signed.split('.').next().expect("header"))
            .expect("base64");
        let hashed =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, b"abc/def"));
        let expected =
            header.replace("\"abc\\/def\"", &format!("\"{hashed}\""));
        assert_eq!(String::from_utf8(new_header).expect("utf8"), expected);
        assert!(signed.ends_with(".e30.c2ln"));
    }
}
