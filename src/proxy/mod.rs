//! The request pipeline: classify, check shape, authenticate, authorize,
//! audit, forward, audit the outcome. Each step lives in its own module;
//! this one only runs them in order and makes sure every end of a cancelAll
//! attempt is audited. Routes other than cancelAll are handled in
//! [`other`].

mod other;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response};
use hyper::body::{Body as _, Incoming};
use tracing::Instrument;

use crate::audit::{Audit, Caller, Event, Record};
use crate::auth::{self, Claims, Verified, Verifier};
use crate::error::{ErrorIds, Rejection};
use crate::metrics::Metrics;
use crate::policy::{Effect, Mode, Policy};
use crate::route::{self, CancelAll, Route};
use crate::shape::{self, Shape};
use crate::upstream::{self, Body, CLIENT_REQUEST_ID, Upstream};

/// Response header naming the audit record of a call.
pub const AUDIT_ID_HEADER: &str = "x-cancelguard-audit-id";

/// Longest audit `path` kept; the rest is cut to keep records bounded.
const MAX_AUDIT_PATH: usize = 1024;

/// Everything a request needs, built once and shared by reference.
pub struct Proxy {
    /// Replaced whole by a config reload; each request reads one version.
    rules: ArcSwap<Rules>,
    pub audit: Audit,
    pub upstream: Upstream,
    pub metrics: Metrics,
    routing: Routing,
    draining: AtomicBool,
}

/// The parts of the pipeline a config reload may replace.
pub struct Rules {
    pub verifier: Verifier,
    pub policy: Policy,
}

/// How routes other than cancelAll are treated.
#[derive(Debug, Clone, Copy)]
pub struct Routing {
    /// Forward them upstream instead of answering 404.
    pub forward_other_routes: bool,
    /// Largest `$batch` body read for inspection.
    pub max_batch_bytes: usize,
}

/// One request's ids and origin, carried through the steps.
struct Call {
    audit_id: String,
    client_request_id: String,
    remote: SocketAddr,
}

impl Proxy {
    /// Assembles the pipeline.
    pub fn new(
        rules: Rules,
        audit: Audit,
        upstream: Upstream,
        routing: Routing,
    ) -> Self {
        Self {
            rules: ArcSwap::from_pointee(rules),
            audit,
            upstream,
            metrics: Metrics::new(),
            routing,
            draining: AtomicBool::new(false),
        }
    }

    /// The verifier and policy in force.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    /// Puts new rules in force; requests already running keep theirs.
    pub fn replace_rules(&self, rules: Rules) {
        self.rules.store(Arc::new(rules));
    }

    /// Marks the proxy as shutting down: new cancelAll calls get 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Serves one request; never fails, every error becomes a response.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Response<Body> {
        let call = Call {
            audit_id: uuid::Uuid::new_v4().to_string(),
            client_request_id: client_request_id(&request),
            remote,
        };
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            audit_id = %call.audit_id,
        );

        let mut response = async {
            let route = route::classify(
                request.method(),
                request.uri(),
                request.version(),
            );
            let (kind, response) = match route {
                Ok(Route::CancelAll(target)) => (
                    "cancel_all",
                    self.cancel_all(&call, request, target).await,
                ),
                Ok(Route::Batch { version }) => {
                    ("batch", self.batch(&call, request, version).await)
                }
                Ok(Route::Other) => ("other", self.other(&call, request).await),
                Err(error) => {
                    let rejection = Rejection::Route(error);
                    let mut record =
                        self.record(&call, &request, Event::Decision);
                    record.decision = Some(Effect::Deny.as_str());
                    ("refused", self.finish(&call, record, rejection).await)
                }
            };
            self.metrics.response(kind, response.status().as_u16());
            response
        }
        .instrument(span)
        .await;

        if let Ok(value) = HeaderValue::from_str(&call.audit_id) {
            response.headers_mut().insert(AUDIT_ID_HEADER, value);
        }
        response
    }

    async fn cancel_all(
        &self,
        call: &Call,
        request: Request<Incoming>,
        target: CancelAll,
    ) -> Response<Body> {
        let rules = self.rules();
        let mut record = self.record(call, &request, Event::Decision);
        record.target = Some(target.request_id.clone());
        record.decision = Some(Effect::Deny.as_str());
        record.mode = Some(rules.policy.mode().as_str());

        if self.is_draining() {
            return self.finish(call, record, Rejection::Draining).await;
        }
        // A token in the URL or a cookie is a credential problem before it
        // is a shape problem: say so, rather than just "no query allowed".
        if let Err(error) =
            auth::token_elsewhere(request.uri(), request.headers())
        {
            return self.finish(call, record, error.into()).await;
        }
        let shape = Shape {
            method: request.method(),
            headers: request.headers(),
            has_query: request.uri().query().is_some(),
            body_is_empty: request.body().is_end_stream(),
        };
        if let Err(error) = shape::check(&shape) {
            return self.finish(call, record, error.into()).await;
        }

        let verified = match self.authenticate(&request, &rules.verifier).await
        {
            Ok(verified) => verified,
            Err((error, unverified)) => {
                record.unverified =
                    unverified.as_ref().map(|c| caller(c, None));
                return self.finish(call, record, error.into()).await;
            }
        };
        record.caller =
            Some(caller(&verified.claims, Some(&verified.token_id)));

        let decision =
            rules.policy.decide(&verified.claims, &target.request_id);
        record.decision = Some(decision.effect.as_str());
        record.reason = Some(decision.reason.into());
        record.rule = decision.rule.clone();
        tracing::info!(
            caller.app_id = verified.claims.app().unwrap_or("-"),
            caller.oid = verified.claims.oid.as_deref().unwrap_or("-"),
            target = %target.request_id,
            decision = decision.effect.as_str(),
            reason = decision.reason,
            rule = decision.rule.as_deref().unwrap_or("-"),
            "cancelAll decided"
        );
        if decision.effect == Effect::Deny
            && rules.policy.mode() == Mode::Enforce
        {
            let rejection = Rejection::Denied {
                reason: decision.reason,
            };
            return self.finish(call, record, rejection).await;
        }

        // Fail closed: nothing is forwarded unless its decision is durable.
        if let Err(error) = self.audit.record_durable(record).await {
            // Debug only: the writer logs each outage once, and readiness
            // and its counter carry the rest; one line per call would
            // flood the log exactly when the disk is full.
            tracing::debug!(%error, "decision not recorded; call refused");
            return self.reject(call, error.into());
        }
        self.metrics
            .decision(decision.effect.as_str(), decision.reason);

        self.forward(call, &target, request.headers()).await
    }

    async fn authenticate(
        &self,
        request: &Request<Incoming>,
        verifier: &Verifier,
    ) -> Result<Arc<Verified>, (auth::AuthError, Option<Box<Claims>>)> {
        let token =
            auth::bearer_token(request.headers()).map_err(|e| (e, None))?;
        match verifier.verify(token).await {
            Ok(verified) => Ok(verified),
            // An oversized token is not decoded at all, not even for the
            // audit record.
            Err(e @ auth::AuthError::TooLarge) => Err((e, None)),
            Err(e) => Err((e, auth::unverified_claims(token).map(Box::new))),
        }
    }

    async fn forward(
        &self,
        call: &Call,
        target: &CancelAll,
        headers: &http::HeaderMap,
    ) -> Response<Body> {
        let started = Instant::now();
        let result = self
            .upstream
            .post_empty(
                &target.canonical_path(),
                headers,
                &call.client_request_id,
            )
            .await;
        let took = started.elapsed();
        self.metrics.upstream(took);
        let elapsed = took.as_millis() as u64;

        let mut outcome = Record::new(Event::Outcome, call.audit_id.clone());
        outcome.client_request_id = Some(call.client_request_id.clone());
        outcome.target = Some(target.request_id.clone());
        outcome.upstream_ms = Some(elapsed);
        match result {
            Ok(response) => {
                tracing::info!(
                    upstream.status = response.status().as_u16(),
                    latency_ms = elapsed,
                    "cancelAll forwarded"
                );
                outcome.status = Some(response.status().as_u16());
                self.audit.record(outcome).await;
                upstream::relay(response)
            }
            Err(error) => {
                tracing::warn!(%error, latency_ms = elapsed, "upstream call failed");
                let rejection = Rejection::Upstream(error);
                outcome.status = Some(rejection.status().as_u16());
                outcome.reason = Some(rejection.reason().into());
                self.audit.record(outcome).await;
                self.reject(call, rejection)
            }
        }
    }

    /// Records a refused attempt and answers it. A failed audit write does
    /// not change the answer: nothing is forwarded either way.
    async fn finish(
        &self,
        call: &Call,
        mut record: Record,
        rejection: Rejection,
    ) -> Response<Body> {
        record.status = Some(rejection.status().as_u16());
        record.reason = Some(rejection.reason().into());
        self.metrics
            .decision(record.decision.unwrap_or("deny"), rejection.reason());
        tracing::info!(
            status = rejection.status().as_u16(),
            reason = rejection.reason(),
            "cancelAll refused"
        );
        if let Err(error) = self.audit.record_durable(record).await {
            tracing::debug!(%error, "refusal not recorded");
        }
        self.reject(call, rejection)
    }

    fn reject(&self, call: &Call, rejection: Rejection) -> Response<Body> {
        rejection.to_response(&ErrorIds {
            audit_id: &call.audit_id,
            client_request_id: &call.client_request_id,
        })
    }

    fn record(
        &self,
        call: &Call,
        request: &Request<Incoming>,
        event: Event,
    ) -> Record {
        let mut path = request.uri().path().to_owned();
        if path.len() > MAX_AUDIT_PATH {
            let mut cut = MAX_AUDIT_PATH;
            while !path.is_char_boundary(cut) {
                cut -= 1;
            }
            path.truncate(cut);
        }
        let mut record = Record::new(event, call.audit_id.clone());
        record.client_request_id = Some(call.client_request_id.clone());
        record.remote_addr = Some(call.remote.to_string());
        record.method = Some(request.method().to_string());
        record.path = Some(path);
        record
    }
}

/// The caller's `client-request-id` if it is a sane token, else a new one.
fn client_request_id<B>(request: &Request<B>) -> String {
    request
        .headers()
        .get(CLIENT_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .filter(|v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn caller(claims: &Claims, token_id: Option<&str>) -> Caller {
    Caller {
        tid: claims.tid.clone(),
        oid: claims.oid.clone(),
        upn: claims.user_name().map(str::to_owned),
        app: claims.app().map(str::to_owned),
        token_id: token_id.map(str::to_owned),
    }
}
