//! Step 1: classify the request target.
//!
//! Graph is lenient about how a path is spelt: segments are matched without
//! regard to case, percent-escapes are decoded, empty segments are skipped,
//! the action may carry the `microsoft.graph.` namespace and the key may sit
//! in parentheses. A guard that matched the raw bytes would be easy to walk
//! around, so the target is decoded once into plain segments and classified
//! from those. Whatever cannot be decoded without ambiguity is refused: the
//! proxy never forwards a target it did not understand.
//!
//! Trailing slashes are merged like any other empty segment, so
//! `.../cancelAll/` is cancelAll too. The path sent upstream for cancelAll is
//! built from the parsed version and request id alone.

use http::{Method, Uri};

/// Longest request id accepted; Graph's ids are GUIDs or close to it.
const MAX_ID_LEN: usize = 128;

/// What a request target is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The guarded action.
    CancelAll(CancelAll),
    /// A JSON batch, which could carry cancelAll inside it.
    Batch { version: Version },
    /// Any other Graph route.
    Other,
}

/// A recognized cancelAll call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelAll {
    pub version: Version,
    /// The `scheduledPermissionsRequest` id, as the caller spelt it.
    pub request_id: String,
}

/// Graph API versions that carry the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Beta,
    V1,
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("CONNECT is not accepted")]
    Connect,
    #[error("the target must be a path starting with '/'")]
    NotOriginForm,
    #[error("the path holds a character that is not allowed")]
    ForbiddenCharacter,
    #[error("the path holds a malformed percent-escape")]
    BadEscape,
    #[error("the path holds an encoded '/', '\\' or '%'")]
    EncodedDelimiter,
    #[error("the path is not valid UTF-8 once decoded")]
    NotUtf8,
    #[error("the path holds a '.' or '..' segment")]
    DotSegment,
    #[error("the request id is empty or holds characters an id cannot hold")]
    BadRequestId,
}

impl Version {
    /// The version as it appears in a path.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Beta => "beta",
            Version::V1 => "v1.0",
        }
    }

    fn parse(segment: &str) -> Option<Self> {
        if segment.eq_ignore_ascii_case("beta") {
            Some(Version::Beta)
        } else if segment.eq_ignore_ascii_case("v1.0") {
            Some(Version::V1)
        } else {
            None
        }
    }
}

impl CancelAll {
    /// The path forwarded upstream, built from parsed parts only.
    pub fn canonical_path(&self) -> String {
        format!(
            "/{}/identityGovernance/permissionsManagement/\
             scheduledPermissionsRequests/{}/cancelAll",
            self.version.as_str(),
            self.request_id
        )
    }
}

/// Classifies a request target.
///
/// HTTP/1 targets must be in origin form (`/path`): an absolute-form target
/// names a host the caller wants, which is not the caller's to choose. An
/// HTTP/2 request always carries scheme and authority as pseudo-headers, so
/// there only the path is read.
pub fn classify(
    method: &Method,
    uri: &Uri,
    version: http::Version,
) -> Result<Route, RouteError> {
    if method == Method::CONNECT {
        return Err(RouteError::Connect);
    }
    let absolute = uri.scheme().is_some() || uri.authority().is_some();
    if absolute && version < http::Version::HTTP_2 {
        return Err(RouteError::NotOriginForm);
    }
    let path = uri.path();
    if !path.starts_with('/') {
        return Err(RouteError::NotOriginForm);
    }

    let decoded = decode(path)?;
    let mut segments = Vec::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(RouteError::DotSegment);
        }
        segments.push(segment);
    }

    classify_segments(&segments)
}

/// Decodes percent-escapes exactly once, refusing anything that would
/// decode differently a second time or hide a delimiter.
fn decode(path: &str) -> Result<String, RouteError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let decoded = if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(RouteError::BadEscape)?;
            let hex =
                std::str::from_utf8(hex).map_err(|_| RouteError::BadEscape)?;
            let value = u8::from_str_radix(hex, 16)
                .map_err(|_| RouteError::BadEscape)?;
            // An escaped delimiter would be a second segment boundary only
            // some parsers see; an escaped '%' is double encoding.
            if matches!(value, b'/' | b'\\' | b'%') {
                return Err(RouteError::EncodedDelimiter);
            }
            i += 3;
            value
        } else {
            i += 1;
            b
        };
        if decoded < 0x20 || decoded == 0x7f || matches!(decoded, b'\\' | b';')
        {
            return Err(RouteError::ForbiddenCharacter);
        }
        out.push(decoded);
    }
    String::from_utf8(out).map_err(|_| RouteError::NotUtf8)
}

fn classify_segments(segments: &[&str]) -> Result<Route, RouteError> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(Route::Other);
    };
    let Some(version) = Version::parse(first) else {
        return Ok(Route::Other);
    };

    if let [single] = rest
        && single.eq_ignore_ascii_case("$batch")
    {
        return Ok(Route::Batch { version });
    }

    // The action lives at `identityGovernance/permissionsManagement/...` and,
    // in older documentation, at `permissionsManagement/...` directly.
    let rest = match rest {
        [ig, tail @ ..] if ig.eq_ignore_ascii_case("identityGovernance") => {
            tail
        }
        _ => rest,
    };
    let [pm, tail @ ..] = rest else {
        return Ok(Route::Other);
    };
    if !pm.eq_ignore_ascii_case("permissionsManagement") {
        return Ok(Route::Other);
    }

    let (raw_id, action) = match tail {
        // `scheduledPermissionsRequests/{id}/cancelAll`
        [collection, id, action] if is_collection(collection) => (*id, *action),
        // `scheduledPermissionsRequests({id})/cancelAll`
        [keyed, action] => match keyed_id(keyed) {
            Some(id) => (id, *action),
            None => return Ok(Route::Other),
        },
        _ => return Ok(Route::Other),
    };
    if !is_cancel_all(action) {
        return Ok(Route::Other);
    }

    let request_id = checked_id(raw_id)?;
    Ok(Route::CancelAll(CancelAll {
        version,
        request_id,
    }))
}

fn is_collection(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("scheduledPermissionsRequests")
}

/// The key of `scheduledPermissionsRequests(...)`, quotes and all.
fn keyed_id(segment: &str) -> Option<&str> {
    const NAME: &str = "scheduledPermissionsRequests";
    let head = segment.get(..NAME.len())?;
    if !head.eq_ignore_ascii_case(NAME) {
        return None;
    }
    segment[NAME.len()..].strip_prefix('(')?.strip_suffix(')')
}

fn is_cancel_all(action: &str) -> bool {
    const NAMESPACE: &str = "microsoft.graph.";
    let action = match action.get(..NAMESPACE.len()) {
        Some(head) if head.eq_ignore_ascii_case(NAMESPACE) => {
            &action[NAMESPACE.len()..]
        }
        _ => action,
    };
    action.eq_ignore_ascii_case("cancelAll")
}

/// Strips OData quotes from a key and checks what is left is an id.
fn checked_id(raw: &str) -> Result<String, RouteError> {
    let id = raw
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(raw);
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
        });
    if valid {
        Ok(id.to_owned())
    } else {
        Err(RouteError::BadRequestId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b2a8c5e-1f3d-4e6a-9b7c-2d4e6f8a0b1c";

    fn route(target: &str) -> Result<Route, RouteError> {
        let uri: Uri = target.parse().expect("test targets parse as URIs");
        classify(&Method::POST, &uri, http::Version::HTTP_11)
    }

    fn cancel_all(version: Version) -> Result<Route, RouteError> {
        Ok(Route::CancelAll(CancelAll {
            version,
            request_id: ID.into(),
        }))
    }

    #[test]
    fn spellings_of_cancel_all_are_recognized() {
        let spellings = [
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll",
            "/beta/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll",
            "/BETA/IDENTITYGOVERNANCE/permissionsmanagement/ScheduledPermissionsRequests/{id}/CANCELALL",
            "/beta//identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll",
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/cancelAll/",
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/microsoft.graph.cancelAll",
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{id}/Microsoft.Graph.CancelAll",
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests({id})/cancelAll",
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests('{id}')/cancelAll",
            "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/%27{id}%27/cancelAll",
            "/beta/identity%47overnance/permissionsManagement/scheduledPermissionsRequests/{id}/cancel%41ll",
        ];
        for spelling in spellings {
            let target = spelling.replace("{id}", ID);
            assert_eq!(route(&target), cancel_all(Version::Beta), "{target}");
        }
        let v1 = format!(
            "/v1.0/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{ID}/cancelAll"
        );
        assert_eq!(route(&v1), cancel_all(Version::V1));
    }

    #[test]
    fn canonical_path_is_built_from_parts() {
        let target = format!(
            "/BETA//permissionsmanagement/scheduledpermissionsrequests('{ID}')/microsoft.graph.cancelall/"
        );
        let Ok(Route::CancelAll(call)) = route(&target) else {
            panic!("not classified as cancelAll");
        };
        assert_eq!(
            call.canonical_path(),
            format!(
                "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests/{ID}/cancelAll"
            )
        );
    }

    #[test]
    fn ambiguous_targets_are_refused() {
        let base = "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests";
        let cases = [
            (
                format!("{base}%2F{ID}/cancelAll"),
                RouteError::EncodedDelimiter,
            ),
            (
                format!("{base}/{ID}%5CcancelAll"),
                RouteError::EncodedDelimiter,
            ),
            (
                format!("{base}/{ID}/cancel%2541ll"),
                RouteError::EncodedDelimiter,
            ),
            (
                format!("{base}/{ID}/cancelAll%00"),
                RouteError::ForbiddenCharacter,
            ),
            (
                format!("{base}/{ID};x=1/cancelAll"),
                RouteError::ForbiddenCharacter,
            ),
            (format!("{base}/{ID}/./cancelAll"), RouteError::DotSegment),
            (
                format!("{base}/x/../{ID}/cancelAll"),
                RouteError::DotSegment,
            ),
            (format!("{base}/{ID}/cancelAll%zz"), RouteError::BadEscape),
            (format!("{base}/{ID}/cancelAll%4"), RouteError::BadEscape),
            (format!("{base}/%ff{ID}/cancelAll"), RouteError::NotUtf8),
            (format!("{base}/''/cancelAll"), RouteError::BadRequestId),
            (format!("{base}/a%20b/cancelAll"), RouteError::BadRequestId),
            (format!("{base}/a*b/cancelAll"), RouteError::BadRequestId),
            (
                format!("https://graph.microsoft.com{base}/{ID}/cancelAll"),
                RouteError::NotOriginForm,
            ),
        ];
        for (target, expected) in cases {
            assert_eq!(route(&target), Err(expected), "{target}");
        }
    }

    #[test]
    fn connect_is_refused() {
        let uri: Uri =
            "graph.microsoft.com:443".parse().expect("authority form");
        let classified =
            classify(&Method::CONNECT, &uri, http::Version::HTTP_11);
        assert_eq!(classified, Err(RouteError::Connect));
    }

    #[test]
    fn other_routes_and_batch_are_told_apart() {
        assert_eq!(route("/v1.0/me"), Ok(Route::Other));
        assert_eq!(route("/"), Ok(Route::Other));
        assert_eq!(
            route(
                "/beta/identityGovernance/permissionsManagement/scheduledPermissionsRequests"
            ),
            Ok(Route::Other)
        );
        assert_eq!(
            route("/beta/$BATCH"),
            Ok(Route::Batch {
                version: Version::Beta
            })
        );
        assert_eq!(
            route("/v1.0/%24batch"),
            Ok(Route::Batch {
                version: Version::V1
            })
        );
    }
}
