//! Routes other than cancelAll: `$batch`, inspected because it can tunnel
//! cancelAll, and everything else, forwarded untouched when
//! `upstream.forward_other_routes` is on and answered 404 when it is off.
//! Neither is token-checked here: Graph checks its own tokens, and the
//! classifier has already made sure no such route can name cancelAll.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::{Call, Proxy};
use crate::audit::Event;
use crate::auth;
use crate::batch::{self, BatchError};
use crate::error::Rejection;
use crate::policy::Effect;
use crate::route::Version;
use crate::shape::{self, ShapeError};
use crate::upstream::{self, Body, BoxError, full_body};

impl Proxy {
    /// A route that cannot name cancelAll.
    pub(super) async fn other(
        &self,
        call: &Call,
        request: Request<Incoming>,
    ) -> Response<Body> {
        // Refused on every route, so that no request can turn into
        // another method behind the proxy's back.
        if shape::has_method_override(request.headers()) {
            return self.reject(call, ShapeError::MethodOverride.into());
        }
        if !self.routing.forward_other_routes {
            tracing::debug!("route not served");
            return self.reject(call, Rejection::NotFound);
        }

        tracing::debug!("forwarding other route");
        let (parts, body) = request.into_parts();
        let body = body.map_err(BoxError::from).boxed();
        self.pass_through(call, parts, body).await
    }

    /// `POST /{version}/$batch`: read, inspect, then treat as other route.
    pub(super) async fn batch(
        &self,
        call: &Call,
        request: Request<Incoming>,
        version: Version,
    ) -> Response<Body> {
        if shape::has_method_override(request.headers()) {
            return self.reject(call, ShapeError::MethodOverride.into());
        }
        let mut record = self.record(call, &request, Event::Decision);
        record.decision = Some(Effect::Deny.as_str());

        let (parts, body) = request.into_parts();
        let checked = if parts.method != http::Method::POST {
            Err(BatchError::NotPost)
        } else {
            read_limited(body, self.routing.max_batch_bytes)
                .await
                .and_then(|bytes| {
                    batch::inspect(&bytes, version).map(|()| bytes)
                })
        };
        let bytes = match checked {
            Ok(bytes) => bytes,
            Err(error) => {
                if let BatchError::CancelAll { request_id } = &error {
                    record.target = Some(request_id.clone());
                }
                // Read only for a refusal's record; a clean batch's token
                // is Graph's to check.
                if let Ok(token) = auth::bearer_token(&parts.headers) {
                    record.unverified = auth::unverified_claims(token)
                        .map(|c| super::caller(&c, None));
                }
                return self.finish(call, record, error.into()).await;
            }
        };

        if !self.routing.forward_other_routes {
            tracing::debug!("batch not served");
            return self.reject(call, Rejection::NotFound);
        }
        tracing::debug!("forwarding clean batch");
        self.pass_through(call, parts, full_body(bytes)).await
    }

    async fn pass_through(
        &self,
        call: &Call,
        parts: http::request::Parts,
        body: Body,
    ) -> Response<Body> {
        let path_and_query =
            parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let result = self
            .upstream
            .pass_through(parts.method, path_and_query, &parts.headers, body)
            .await;
        match result {
            Ok(response) => upstream::relay(response),
            Err(error) => {
                tracing::debug!(%error, "other route not relayed");
                self.reject(call, error.into())
            }
        }
    }
}

/// Reads a body up to `limit` bytes.
async fn read_limited(
    body: Incoming,
    limit: usize,
) -> Result<Bytes, BatchError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BatchError::TooLarge)
        }
        Err(_) => Err(BatchError::NotJson("the body could not be read".into())),
    }
}
