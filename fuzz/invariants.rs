//! What must hold for any input to the classifier and the batch inspector.
//! Shared by the fuzz targets and by `tests/fuzz_regressions.rs`, which
//! replays the inputs kept under `fuzz/regressions/`.

use cancelguard::batch;
use cancelguard::route::{self, Route, Version};

/// Checks one request target. Panics when an invariant breaks.
pub fn check_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = text.parse::<http::Uri>() {
        let _ =
            route::classify(&http::Method::POST, &uri, http::Version::HTTP_11);
        let _ =
            route::classify(&http::Method::POST, &uri, http::Version::HTTP_2);
    }
    match route::classify_path(text) {
        // The canonical path must mean the same call.
        Ok(Route::CancelAll(call)) => {
            let again = route::classify_path(&call.canonical_path());
            assert_eq!(again, Ok(Route::CancelAll(call)));
        }
        // A route that may be forwarded must not name the action.
        Ok(Route::Other) => {
            assert!(!names_cancel_all(text), "{text}");
        }
        Ok(Route::Batch { .. }) | Err(_) => {}
    }
}

/// Checks one `$batch` body. Panics when an invariant breaks.
pub fn check_batch(data: &[u8]) {
    if batch::inspect(data, Version::Beta).is_err() {
        return;
    }
    // A batch that passed must not carry a url naming the action.
    let json: serde_json::Value =
        serde_json::from_slice(data).expect("a batch that passed is JSON");
    for request in json["requests"].as_array().expect("requests array") {
        let url = request["url"].as_str().expect("url string");
        let path = url.split('?').next().unwrap_or_default();
        assert!(!names_cancel_all(path), "{url}");
    }
}

/// Whether some path segment, stripped to letters and digits, holds
/// `cancelall`.
fn names_cancel_all(path: &str) -> bool {
    percent_decoded(path)
        .split('/')
        .any(|segment| skeleton(segment).contains("cancelall"))
}

fn skeleton(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
