//! The admin listener: liveness, readiness and metrics for orchestrators.
//!
//! Readiness is what a Kubernetes Service uses to route traffic, so it says
//! no whenever the proxy would refuse cancelAll for its own reasons: keys not
//! loaded, the audit file not writable, or shutdown under way.

use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;

use crate::metrics::Snapshot;
use crate::proxy::Proxy;
use crate::upstream::{Body, full_body};

/// Answers one admin request.
pub fn handle<B>(proxy: &Arc<Proxy>, request: &Request<B>) -> Response<Body> {
    if request.method() != Method::GET {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"status": "method not allowed"}),
        );
    }
    match request.uri().path() {
        "/healthz" => json_response(StatusCode::OK, json!({"status": "ok"})),
        "/readyz" => {
            let reasons = not_ready_reasons(proxy);
            if reasons.is_empty() {
                let mut body = json!({"status": "ready"});
                // Stale keys still verify tokens; the warning is for
                // operators, not a reason to take the replica out.
                if proxy.rules().verifier.keys().is_stale() {
                    body["warnings"] = json!([
                        "signing key refresh failing; serving the last good keys"
                    ]);
                }
                json_response(StatusCode::OK, body)
            } else {
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"status": "not ready", "reasons": reasons}),
                )
            }
        }
        "/metrics" => metrics(proxy),
        _ => {
            json_response(StatusCode::NOT_FOUND, json!({"status": "not found"}))
        }
    }
}

/// Why the proxy cannot serve cancelAll right now; empty when it can.
pub fn not_ready_reasons(proxy: &Proxy) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if !proxy.rules().verifier.keys().is_loaded() {
        reasons.push("signing keys not loaded");
    }
    if !proxy.audit.is_healthy() {
        reasons.push("audit file not writable");
    }
    if proxy.is_draining() {
        reasons.push("shutting down");
    }
    reasons
}

/// The Prometheus text rendering of the proxy's metrics.
fn metrics(proxy: &Proxy) -> Response<Body> {
    let snapshot = Snapshot {
        keys_loaded: proxy.rules().verifier.keys().is_loaded(),
        keys_stale: proxy.rules().verifier.keys().is_stale(),
        signature_checks: proxy.rules().verifier.signature_checks(),
        cached_tokens: proxy.rules().verifier.cached_tokens(),
        audit_healthy: proxy.audit.is_healthy(),
        audit_syncs: proxy.audit.syncs(),
        audit_write_failures: proxy.audit.write_failures(),
        draining: proxy.is_draining(),
    };
    let mut response =
        Response::new(full_body(proxy.metrics.render(&snapshot)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn json_response(
    status: StatusCode,
    body: serde_json::Value,
) -> Response<Body> {
    let mut response = Response::new(full_body(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
