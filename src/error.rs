//! Every way the proxy itself can end a request, mapped in one place to an
//! HTTP status, a Graph error code, a message for the caller and a reason
//! for the audit record.
//!
//! Errors use Graph's error shape so Graph SDKs surface them as they surface
//! Graph's own. Messages say what was wrong and what to do; the details that
//! would help an attacker (which rule, which key) stay in the audit record.

use std::time::SystemTime;

use http::header::{ALLOW, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use serde_json::json;

use crate::audit::AuditError;
use crate::auth::AuthError;
use crate::batch::BatchError;
use crate::route::RouteError;
use crate::shape::ShapeError;
use crate::upstream::{Body, UpstreamError, full_body};

/// A request ended by the proxy.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("denied by policy")]
    Denied { reason: &'static str },
    #[error("route not served by this proxy")]
    NotFound,
    #[error("the proxy is shutting down")]
    Draining,
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Ids that every error body carries.
pub struct ErrorIds<'a> {
    pub audit_id: &'a str,
    pub client_request_id: &'a str,
}

impl Rejection {
    /// The HTTP status for this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Route(_) => StatusCode::BAD_REQUEST,
            Rejection::Shape(ShapeError::MethodNotAllowed) => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            Rejection::Shape(_) => StatusCode::BAD_REQUEST,
            Rejection::Batch(BatchError::CancelAll { .. }) => {
                StatusCode::FORBIDDEN
            }
            Rejection::Batch(BatchError::NotPost) => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            Rejection::Batch(_) => StatusCode::BAD_REQUEST,
            Rejection::Auth(AuthError::KeysNotLoaded) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Rejection::Auth(_) => StatusCode::UNAUTHORIZED,
            Rejection::Denied { .. } => StatusCode::FORBIDDEN,
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::Draining | Rejection::Audit(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Rejection::Upstream(UpstreamError::Timeout(_)) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Rejection::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The audit `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Route(_) => "malformed_target",
            Rejection::Shape(ShapeError::MethodNotAllowed) => {
                "method_not_allowed"
            }
            Rejection::Shape(ShapeError::MethodOverride) => "method_override",
            Rejection::Shape(ShapeError::Body) => "body_not_allowed",
            Rejection::Shape(ShapeError::Query) => "query_not_allowed",
            Rejection::Batch(BatchError::CancelAll { .. }) => {
                "cancelall_in_batch"
            }
            Rejection::Batch(_) => "batch_refused",
            Rejection::Auth(e) => e.reason(),
            Rejection::Denied { reason } => reason,
            Rejection::NotFound => "not_found",
            Rejection::Draining => "draining",
            Rejection::Audit(_) => "audit_unavailable",
            Rejection::Upstream(UpstreamError::Connect(_)) => {
                "upstream_connect"
            }
            Rejection::Upstream(UpstreamError::Timeout(_)) => {
                "upstream_timeout"
            }
            Rejection::Upstream(UpstreamError::Failed(_)) => "upstream_error",
        }
    }

    fn code(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::UNAUTHORIZED => "InvalidAuthenticationToken",
            StatusCode::FORBIDDEN => "Authorization_RequestDenied",
            StatusCode::NOT_FOUND => "ResourceNotFound",
            StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
            StatusCode::GATEWAY_TIMEOUT => "GatewayTimeout",
            StatusCode::BAD_GATEWAY => "BadGateway",
            _ => "ServiceUnavailable",
        }
    }

    /// What the caller is told. Never key material, tokens or rule names.
    fn message(&self) -> String {
        let fixed = match self {
            Rejection::Route(e) => {
                return format!(
                    "cancelguard refused the request target: {e}; \
                     send a plain, unencoded Graph path"
                );
            }
            Rejection::Shape(e) => {
                return format!("{e}; send POST with no body and no query");
            }
            Rejection::Auth(e) => return e.to_string(),
            Rejection::Batch(BatchError::CancelAll { .. }) => {
                "cancelAll cannot be sent inside $batch; call POST \
                 /{version}/identityGovernance/permissionsManagement/\
                 scheduledPermissionsRequests/{id}/cancelAll directly"
            }
            Rejection::Batch(e) => {
                return format!("cancelguard refused the batch: {e}");
            }
            Rejection::Denied { .. } => {
                "cancelguard's policy does not allow this caller to cancel \
                 this request; ask the proxy's operators for access"
            }
            Rejection::NotFound => {
                "cancelguard does not forward this route; it serves the \
                 scheduledPermissionsRequest cancelAll action"
            }
            Rejection::Draining => {
                "cancelguard is shutting down; retry against another instance"
            }
            Rejection::Audit(_) => {
                "cancelguard cannot record the call in its audit trail, so it \
                 was not forwarded; retry later"
            }
            Rejection::Upstream(UpstreamError::Timeout(_)) => {
                "Microsoft Graph did not answer in time; the cancellation may \
                 or may not have happened"
            }
            Rejection::Upstream(_) => {
                "cancelguard could not reach Microsoft Graph; retry later"
            }
        };
        fixed.to_owned()
    }

    /// The Graph-shaped error response.
    pub fn to_response(&self, ids: &ErrorIds<'_>) -> Response<Body> {
        let body = json!({
            "error": {
                "code": self.code(),
                "message": self.message(),
                "innerError": {
                    "request-id": ids.audit_id,
                    "client-request-id": ids.client_request_id,
                    "date": now_rfc3339(),
                }
            }
        });
        let mut response = Response::new(full_body(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));

        match self {
            Rejection::Shape(ShapeError::MethodNotAllowed)
            | Rejection::Batch(BatchError::NotPost) => {
                headers.insert(ALLOW, HeaderValue::from_static("POST"));
            }
            Rejection::Auth(AuthError::MissingToken) => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer"),
                );
            }
            Rejection::Auth(e) if self.status() == StatusCode::UNAUTHORIZED => {
                // The description is one of our fixed messages: no quotes,
                // no caller input, so it is always a valid header value.
                let value = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{e}\""
                );
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(WWW_AUTHENTICATE, value);
                }
            }
            _ => {}
        }
        response
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
