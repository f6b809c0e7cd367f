//! Step 2: check that a cancelAll call has the shape Graph documents.
//!
//! cancelAll is a `POST` with no body and no query. Anything else is refused
//! before the token is even looked at, so that a request which would mean
//! something different upstream (a GET turned POST by an override header, a
//! body smuggled past the proxy) never reaches Graph.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method};

/// Headers some servers honour to change the method behind a proxy's back.
pub const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Why a cancelAll call has the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("cancelAll takes POST only")]
    MethodNotAllowed,
    #[error("method override headers are not accepted")]
    MethodOverride,
    #[error("cancelAll takes no request body")]
    Body,
    #[error("cancelAll takes no query string")]
    Query,
}

/// What the shape check needs to know about a request.
pub struct Shape<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub has_query: bool,
    /// True when the body is known to be empty (no bytes will follow).
    pub body_is_empty: bool,
}

/// Checks the shape of a cancelAll call.
pub fn check(shape: &Shape<'_>) -> Result<(), ShapeError> {
    if has_method_override(shape.headers) {
        return Err(ShapeError::MethodOverride);
    }
    if shape.method != Method::POST {
        return Err(ShapeError::MethodNotAllowed);
    }

    // Every Content-Length must be a plain zero; several values, or one that
    // does not parse, could be read differently upstream.
    let lengths_are_zero = shape
        .headers
        .get_all(CONTENT_LENGTH)
        .iter()
        .all(|v| v.as_bytes() == b"0");
    if !lengths_are_zero
        || shape.headers.contains_key(TRANSFER_ENCODING)
        || !shape.body_is_empty
    {
        return Err(ShapeError::Body);
    }

    if shape.has_query {
        return Err(ShapeError::Query);
    }
    Ok(())
}

/// True when a request carries any method override header.
pub fn has_method_override(headers: &HeaderMap) -> bool {
    METHOD_OVERRIDES.iter().any(|h| headers.contains_key(*h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn check_with(
        method: Method,
        headers: &[(&'static str, &'static str)],
        has_query: bool,
        body_is_empty: bool,
    ) -> Result<(), ShapeError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        check(&Shape {
            method: &method,
            headers: &map,
            has_query,
            body_is_empty,
        })
    }

    #[test]
    fn bare_post_passes() {
        assert_eq!(check_with(Method::POST, &[], false, true), Ok(()));
        assert_eq!(
            check_with(Method::POST, &[("content-length", "0")], false, true),
            Ok(())
        );
    }

    #[test]
    fn wrong_shapes_are_refused() {
        let cases = [
            (
                Method::GET,
                vec![],
                false,
                true,
                ShapeError::MethodNotAllowed,
            ),
            (
                Method::PUT,
                vec![],
                false,
                true,
                ShapeError::MethodNotAllowed,
            ),
            (
                Method::GET,
                vec![("x-http-method-override", "POST")],
                false,
                true,
                ShapeError::MethodOverride,
            ),
            (
                Method::POST,
                vec![("X-Method-Override", "DELETE")],
                false,
                true,
                ShapeError::MethodOverride,
            ),
            (
                Method::POST,
                vec![("content-length", "2")],
                false,
                true,
                ShapeError::Body,
            ),
            (
                Method::POST,
                vec![("content-length", "0"), ("content-length", "5")],
                false,
                true,
                ShapeError::Body,
            ),
            (
                Method::POST,
                vec![("transfer-encoding", "chunked")],
                false,
                true,
                ShapeError::Body,
            ),
            (Method::POST, vec![], false, false, ShapeError::Body),
            (Method::POST, vec![], true, true, ShapeError::Query),
        ];
        for (method, headers, query, empty, expected) in cases {
            assert_eq!(
                check_with(method.clone(), &headers, query, empty),
                Err(expected.clone()),
                "{method} {headers:?}"
            );
        }
    }
}
