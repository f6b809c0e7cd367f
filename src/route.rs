//! Step 1: classify the request target.
//!
//! Graph is lenient about how a path is spelt: segments are matched without
//! regard to case, percent-escapes are decoded, empty segments are skipped,
//! the action may carry the `microsoft.graph.` namespace and the key may sit
//! in parentheses. A guard that matched the raw bytes would be easy to walk
//! around, so the target is decoded once into plain segments and classified
//! from those.
//!
//! Two rules keep the classification from being talked around:
//!
//! - whatever cannot be decoded without ambiguity is refused (encoded
//!   delimiters, double encoding, dot segments, path parameters, control or
//!   non-ASCII characters): the proxy never forwards what it did not
//!   understand;
//! - a path in which any segment so much as mentions `cancelAll` (letters
//!   and digits compared, everything else ignored) is either recognized as
//!   cancelAll exactly or refused. Only paths that cannot name the action
//!   are "other routes".
//!
//! Trailing slashes are merged like any other empty segment, so
//! `.../cancelAll/` is cancelAll too. The path sent upstream for cancelAll
//! is built from the parsed version and request id alone.

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
    /// Any other Graph route; it cannot name cancelAll.
    Other,
}

/// A recognized cancelAll call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelAll {
    pub version: Version,
    /// The `scheduledPermissionsRequest` id, quotes removed.
    pub request_id: String,
}

/// Graph API versions.
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
    #[error("the path holds non-ASCII characters")]
    NonAscii,
    #[error("the path holds a '.' or '..' segment")]
    DotSegment,
    #[error("the request id is empty or holds characters an id cannot hold")]
    BadRequestId,
    #[error("the path names cancelAll in a form this proxy does not accept")]
    UnrecognizedCancelAll,
    #[error("the path names $batch in a form this proxy does not accept")]
    UnrecognizedBatch,
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
    classify_path(uri.path())
}

/// Classifies a `$batch` sub-request's `url`, which is relative to the
/// version root with or without a leading slash, and may carry a query.
pub fn classify_relative(
    version: Version,
    url: &str,
) -> Result<Route, RouteError> {
    // A fragment never reaches a server; one in a batch url is a trick.
    if url.contains('#') {
        return Err(RouteError::ForbiddenCharacter);
    }
    let path = url.split_once('?').map_or(url, |(path, _)| path);
    // A scheme (`https:`) or authority (`//host`) would point the
    // sub-request somewhere of the caller's choosing.
    let first = path.split('/').next().unwrap_or_default();
    if first.contains(':') || path.starts_with("//") {
        return Err(RouteError::NotOriginForm);
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    classify_path(&format!("/{}/{path}", version.as_str()))
}

/// Classifies a decoded-once path.
pub fn classify_path(path: &str) -> Result<Route, RouteError> {
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

    if let Some(route) = exact(&segments)? {
        return Ok(route);
    }
    // Not an exact match. Anything that still names the action or the batch
    // endpoint is a spelling this proxy does not know, and is refused.
    if segments.iter().any(|s| mentions(s, "cancelall")) {
        return Err(RouteError::UnrecognizedCancelAll);
    }
    if segments.iter().any(|s| skeleton(s) == "batch") {
        return Err(RouteError::UnrecognizedBatch);
    }
    Ok(Route::Other)
}

/// Decodes percent-escapes exactly once, refusing anything that would
/// decode differently a second time, hide a delimiter, or fold onto ASCII
/// letters in a case-insensitive router (such as `ı` or `ſ`).
fn decode(path: &str) -> Result<String, RouteError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let decoded = if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(RouteError::BadEscape)?;
            let value = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(RouteError::BadEscape)?;
            // An escaped delimiter is a segment boundary only some parsers
            // see; an escaped '%' is double encoding.
            if matches!(value, b'/' | b'\\' | b'%') {
                return Err(RouteError::EncodedDelimiter);
            }
            i += 3;
            value
        } else {
            if !is_path_char(b) {
                return Err(RouteError::ForbiddenCharacter);
            }
            i += 1;
            b
        };
        if !decoded.is_ascii() {
            return Err(RouteError::NonAscii);
        }
        if decoded < 0x20 || matches!(decoded, 0x7f | b'\\' | b';' | b'#') {
            return Err(RouteError::ForbiddenCharacter);
        }
        out.push(decoded);
    }
    // Every byte is ASCII, so this cannot fail; map it anyway.
    String::from_utf8(out).map_err(|_| RouteError::NonAscii)
}

/// Characters RFC 3986 allows unescaped in a path.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

/// True when `segment`'s skeleton contains `word`.
fn mentions(segment: &str, word: &str) -> bool {
    skeleton(segment).contains(word)
}

/// A segment reduced to its lowercased letters and digits: what is left
/// once every spelling trick (case, punctuation, namespaces, parentheses)
/// is taken away.
fn skeleton(segment: &str) -> String {
    segment
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The routes this proxy recognizes exactly, or `None`.
fn exact(segments: &[&str]) -> Result<Option<Route>, RouteError> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(None);
    };
    let Some(version) = Version::parse(first) else {
        return Ok(None);
    };

    if let [single] = rest
        && single.eq_ignore_ascii_case("$batch")
    {
        return Ok(Some(Route::Batch { version }));
    }

    // The action lives at `identityGovernance/permissionsManagement/...`
    // and, in older documentation, at `permissionsManagement/...`.
    let rest = match rest {
        [ig, tail @ ..] if ig.eq_ignore_ascii_case("identityGovernance") => {
            tail
        }
        _ => rest,
    };
    let [pm, tail @ ..] = rest else {
        return Ok(None);
    };
    if !pm.eq_ignore_ascii_case("permissionsManagement") {
        return Ok(None);
    }

    let (raw_id, action) = match tail {
        // `scheduledPermissionsRequests/{id}/cancelAll`
        [collection, id, action] if is_collection(collection) => (*id, *action),
        // `scheduledPermissionsRequests({id})/cancelAll`
        [keyed, action] => match keyed_id(keyed) {
            Some(id) => (id, *action),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    if !is_cancel_all(action) {
        return Ok(None);
    }

    let request_id = checked_id(raw_id)?;
    Ok(Some(Route::CancelAll(CancelAll {
        version,
        request_id,
    })))
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
mod tests;
