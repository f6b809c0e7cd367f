//! `$batch` inspection: JSON batching tunnels up to twenty sub-requests
//! through one `POST /{version}/$batch`, so a guard that looked only at the
//! outer path could be walked around. Every sub-request's `url` is
//! classified with the same parser as a top-level target; a batch that holds
//! cancelAll, or anything the parser refuses, is refused whole.

use serde::Deserialize;

use crate::route::{self, Route, RouteError, Version};
use crate::shape::METHOD_OVERRIDES;

/// Graph's documented maximum number of sub-requests in one batch.
pub const MAX_SUBREQUESTS: usize = 20;

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("$batch takes POST only")]
    NotPost,
    #[error("the batch body is larger than this proxy accepts")]
    TooLarge,
    #[error("the batch body is not a JSON batch: {0}")]
    NotJson(String),
    #[error("the batch holds {0} requests; at most 20 are allowed")]
    TooMany(usize),
    #[error("the batch holds cancelAll")]
    CancelAll { request_id: String },
    #[error("sub-request {index}: {error}")]
    Refused { index: usize, error: RouteError },
    #[error("sub-request {0} is itself a batch")]
    Nested(usize),
    #[error("sub-request {0} carries a method override header")]
    MethodOverride(usize),
}

#[derive(Deserialize)]
struct Body {
    requests: Vec<SubRequest>,
}

#[derive(Deserialize)]
struct SubRequest {
    url: String,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
}

/// Checks a batch body. `Ok` means the batch may be forwarded unchanged.
pub fn inspect(body: &[u8], version: Version) -> Result<(), BatchError> {
    // serde skips the fields it ignores without checking their strings,
    // so the whole body is checked to be UTF-8 first: Graph must not read
    // a body this proxy only skimmed.
    if std::str::from_utf8(body).is_err() {
        return Err(BatchError::NotJson("the body is not UTF-8".into()));
    }
    // serde would also read these structs from JSON arrays, which Graph
    // does not accept; the body and each request must be objects.
    let tree: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| BatchError::NotJson(e.to_string()))?;
    let objects = tree.as_object().is_some_and(|top| {
        top.get("requests")
            .and_then(|r| r.as_array())
            .is_some_and(|items| items.iter().all(|i| i.is_object()))
    });
    if !objects {
        return Err(BatchError::NotJson(
            "expected {\"requests\": [{...}, ...]}".into(),
        ));
    }
    // Duplicate keys are refused by serde for these structs, so the proxy
    // and Graph cannot read two different `url`s out of one object.
    let batch: Body = serde_json::from_slice(body)
        .map_err(|e| BatchError::NotJson(e.to_string()))?;
    if batch.requests.len() > MAX_SUBREQUESTS {
        return Err(BatchError::TooMany(batch.requests.len()));
    }

    for (index, sub) in batch.requests.iter().enumerate() {
        let overridden = sub.headers.keys().any(|name| {
            METHOD_OVERRIDES
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
        });
        if overridden {
            return Err(BatchError::MethodOverride(index));
        }
        match route::classify_relative(version, &sub.url) {
            Ok(Route::Other) => {}
            Ok(Route::CancelAll(call)) => {
                return Err(BatchError::CancelAll {
                    request_id: call.request_id,
                });
            }
            Ok(Route::Batch { .. }) => return Err(BatchError::Nested(index)),
            Err(error) => return Err(BatchError::Refused { index, error }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANCEL: &str = "identityGovernance/permissionsManagement/\
                          scheduledPermissionsRequests/r-1/cancelAll";

    fn batch(urls: &[&str]) -> Vec<u8> {
        let requests: Vec<_> = urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                serde_json::json!({"id": i.to_string(), "method": "GET", "url": url})
            })
            .collect();
        serde_json::json!({ "requests": requests })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn clean_batch_passes() {
        let body = batch(&["/me", "users?$top=1", "groups/g-1/members"]);
        assert_eq!(inspect(&body, Version::V1), Ok(()));
    }

    #[test]
    fn cancel_all_inside_is_found_in_any_position_and_spelling() {
        let spellings = [
            CANCEL.to_string(),
            format!("/{CANCEL}"),
            format!("{CANCEL}/"),
            CANCEL.to_uppercase().replace("R-1", "r-1"),
            "permissionsManagement/scheduledPermissionsRequests('r-1')/\
             microsoft.graph.cancelAll"
                .to_string(),
        ];
        for url in &spellings {
            let body = batch(&["/me", url]);
            assert_eq!(
                inspect(&body, Version::Beta),
                Err(BatchError::CancelAll {
                    request_id: "r-1".into()
                }),
                "{url}"
            );
        }
    }

    #[test]
    fn doubtful_batches_are_refused() {
        let refused = |body: &[u8]| inspect(body, Version::Beta).is_err();
        assert!(refused(b"not json"));
        assert!(refused(b"[[]]"));
        assert!(refused(br#"{"requests":[["/me"]]}"#));
        assert!(refused(
            b"{\"requests\":[{\"method\":\"G\xffT\",\"url\":\"/me\"}]}"
        ));
        assert!(refused(b"{\"requests\": {}}"));
        assert!(refused(br#"{"requests":[{"id":"1","method":"GET"}]}"#));
        assert!(refused(
            br#"{"requests":[],"requests":[{"id":"1","url":"/me"}]}"#
        ));
        assert!(refused(
            br#"{"requests":[{"id":"1","url":"/me","url":"/x/cancelAll"}]}"#
        ));
        assert!(refused(&batch(&["/me"; 21])));
        assert!(refused(&batch(&["$batch"])));
        assert!(refused(&batch(&["/beta/x/../cancelAll"])));
        assert!(refused(&batch(&["https://evil.example/beta/me"])));
        assert!(refused(&batch(&["//evil.example/beta/me"])));
        let overridden = br#"{"requests":[{"id":"1","url":"/me",
            "headers":{"X-HTTP-Method-Override":"POST"}}]}"#;
        assert_eq!(
            inspect(overridden, Version::Beta),
            Err(BatchError::MethodOverride(0))
        );
    }
}
