//! `cancelguard explain`: run one call through the same steps the proxy
//! runs (classify, shape, token, policy) and say what would happen and why.
//! Nothing is forwarded and no audit record is written.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Uri};

use crate::auth::keys::KeyStore;
use crate::auth::{self, Verifier};
use crate::config::Config;
use crate::error::Rejection;
use crate::policy::{Effect, Mode};
use crate::route::{self, Route};
use crate::shape::{self, Shape};
use crate::upstream::build_client;

/// Arguments of `explain`.
pub(super) struct Call<'a> {
    pub config: &'a Path,
    pub token: &'a str,
    pub path: &'a str,
    pub method: &'a str,
}

/// Explains one call; exit 0 when it would be forwarded, 1 when refused,
/// 2 when the call or the setup cannot be evaluated.
pub(super) fn run(call: Call<'_>) -> ExitCode {
    let config = match Config::load(call.config) {
        Ok(config) => config,
        Err(error) => return unusable(&error),
    };
    let token = match read_token(call.token) {
        Ok(token) => token,
        Err(error) => return unusable(&error),
    };
    let Ok(method) = Method::from_bytes(call.method.as_bytes()) else {
        return unusable(&format!("'{}' is not an HTTP method", call.method));
    };
    let Ok(uri) = call.path.parse::<Uri>() else {
        return unusable(&format!("'{}' is not a request target", call.path));
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return unusable(&error),
    };
    match runtime.block_on(evaluate(&config, &method, &uri, &token)) {
        Ok(verdict) => {
            super::say(&format!("{}\n", verdict.text));
            if verdict.forwarded {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => unusable(&format!("{error:#}")),
    }
}

struct Verdict {
    text: String,
    forwarded: bool,
}

async fn evaluate(
    config: &Config,
    method: &Method,
    uri: &Uri,
    token: &str,
) -> anyhow::Result<Verdict> {
    let mut text = String::new();
    let mut line = |s: String| {
        text.push_str(&s);
        text.push('\n');
    };
    let refuse = |text: String, rejection: Rejection| Verdict {
        text: format!(
            "{text}refused: {} ({}): {rejection}",
            rejection.status().as_u16(),
            rejection.reason()
        ),
        forwarded: false,
    };

    let target = match route::classify(method, uri, http::Version::HTTP_11) {
        Ok(Route::CancelAll(target)) => target,
        Ok(Route::Batch { .. } | Route::Other) => {
            line(format!("route: {} is not cancelAll", uri.path()));
            return Ok(Verdict {
                text: format!(
                    "{text}not guarded: other routes are {}",
                    if config.upstream.forward_other_routes {
                        "forwarded untouched ($batch bodies inspected first)"
                    } else {
                        "answered 404"
                    }
                ),
                forwarded: config.upstream.forward_other_routes,
            });
        }
        Err(error) => return Ok(refuse(text, error.into())),
    };
    line(format!(
        "route: cancelAll, version {}, request {}",
        target.version.as_str(),
        target.request_id
    ));

    let headers = HeaderMap::new();
    let shape = Shape {
        method,
        headers: &headers,
        has_query: uri.query().is_some(),
        body_is_empty: true,
    };
    if let Err(error) = auth::token_elsewhere(uri, &headers)
        .map_err(Rejection::from)
        .and_then(|()| shape::check(&shape).map_err(Rejection::from))
    {
        return Ok(refuse(text, error));
    }
    line("shape: POST, no body, no query".into());

    let client = build_client(&config.upstream)?;
    let keys = Arc::new(KeyStore::from_config(&config.auth, client));
    keys.load().await?;
    let verifier = Verifier::new(&config.auth, keys);
    let mut bearer = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| anyhow::anyhow!("the token holds invalid characters"))?;
    bearer.insert(http::header::AUTHORIZATION, value);
    let verified = match auth::bearer_token(&bearer) {
        Ok(token) => verifier.verify(token).await,
        Err(error) => Err(error),
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => return Ok(refuse(text, error.into())),
    };
    let claims = &verified.claims;
    let show = |v: Option<&str>| v.unwrap_or("-").to_owned();
    line(format!(
        "token: valid; tid {}, oid {}, user {}, app {}",
        show(claims.tid.as_deref()),
        show(claims.oid.as_deref()),
        show(claims.user_name()),
        show(claims.app())
    ));

    let decision = config.policy.decide(claims, &target.request_id);
    line(format!(
        "policy: {} ({}{})",
        decision.effect.as_str(),
        decision.reason,
        decision
            .rule
            .as_deref()
            .map(|r| format!(", rule '{r}'"))
            .unwrap_or_default()
    ));
    let dry_run = config.policy.mode() == Mode::DryRun;
    if decision.effect == Effect::Deny && !dry_run {
        let rejection = Rejection::Denied {
            reason: decision.reason,
        };
        return Ok(refuse(text, rejection));
    }
    let note = if decision.effect == Effect::Deny {
        " (dry-run: the denial is only recorded)"
    } else {
        ""
    };
    Ok(Verdict {
        text: format!(
            "{text}forwarded{note}: POST {}{} after its decision is audited",
            config.upstream.url.to_string().trim_end_matches('/'),
            target.canonical_path()
        ),
        forwarded: true,
    })
}

/// The token itself, or read from stdin for `-`, so that it need not sit
/// in shell history.
fn read_token(arg: &str) -> Result<String, String> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut token = String::new();
    std::io::stdin()
        .read_to_string(&mut token)
        .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
    Ok(token.trim().to_owned())
}

fn unusable(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("cancelguard: {error}");
    ExitCode::from(2)
}
