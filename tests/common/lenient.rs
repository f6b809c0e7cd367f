//! A router at least as lenient as Graph's, written without looking at the
//! proxy's own classifier, so that each checks the other.
//!
//! It answers one question: would a server this forgiving run cancelAll for
//! this request? It decodes escapes repeatedly, treats `\` as `/`, resolves
//! dot segments, drops `;` parameters and empty segments, folds case the
//! way .NET does (so `ı` is `i` and `ſ` is `s`), accepts any namespace
//! before the action and any parentheses after it, and looks inside `$batch`
//! bodies. When it says yes for a request the proxy forwarded without
//! allowing it, the proxy has been talked around.

/// Whether `target` (path and query) with `body` would run cancelAll.
pub fn routes_to_cancel_all(target: &str, body: &[u8]) -> bool {
    let segments = segments(target);
    if segments.iter().any(|s| names_cancel_all(s)) {
        return true;
    }
    let is_batch = segments
        .last()
        .is_some_and(|s| s.trim_start_matches('$') == "batch");
    is_batch && batch_runs_cancel_all(body)
}

fn batch_runs_cancel_all(body: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let mut urls = Vec::new();
    collect_urls(&json, &mut urls);
    urls.iter()
        .any(|url| routes_to_cancel_all(&format!("/beta/{url}"), b""))
}

/// Every string under a key named `url`, at any depth and in any case.
fn collect_urls(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                if key.eq_ignore_ascii_case("url")
                    && let Some(url) = value.as_str()
                {
                    out.push(url.to_owned());
                }
                collect_urls(value, out);
            }
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|v| collect_urls(v, out));
        }
        _ => {}
    }
}

/// The path's segments after every forgiveness a router might show.
fn segments(target: &str) -> Vec<String> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let mut text = path.to_owned();
    for _ in 0..4 {
        let decoded = percent_decode(&text);
        if decoded == text {
            break;
        }
        text = decoded;
    }
    let text = fold_case(&text.replace('\\', "/"));

    let mut out: Vec<String> = Vec::new();
    for raw in text.split('/') {
        let segment = raw.split(';').next().unwrap_or_default().trim();
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(segment.to_owned()),
        }
    }
    out
}

/// `cancelall`, with any namespace before it and any parentheses after.
fn names_cancel_all(segment: &str) -> bool {
    let name = segment.split('(').next().unwrap_or_default();
    let name = name.rsplit('.').next().unwrap_or_default();
    name.trim() == "cancelall"
}

/// Lowercase after uppercase, as case-insensitive .NET comparisons do:
/// letters that uppercase to ASCII compare equal to it.
fn fold_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
