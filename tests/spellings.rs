//! Property tests from the attacker's side: generated spellings of the
//! cancelAll target (case, escapes, namespace, parenthesized keys, legacy
//! path, extra and trailing slashes, versions) and near misses, sent as raw
//! bytes to a proxy that forwards other routes. The stand-in Graph routes
//! every request it receives with its own lenient router; the invariant is
//! that it never runs a cancelAll the proxy did not allow and audit.

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// One proxy for all cases; it forwards routes other than cancelAll.
fn proxy() -> &'static Harness {
    static PROXY: OnceLock<Harness> = OnceLock::new();
    PROXY.get_or_init(|| {
        runtime().block_on(Harness::start(Setup {
            forward_other_routes: true,
            ..Setup::default()
        }))
    })
}

/// Held while a case sends and inspects, since the properties share one
/// stand-in whose log they read.
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `target` as the raw request line of a POST and returns the status.
fn send_raw(target: &str, token: &str) -> u16 {
    let addr = proxy().addr;
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: graph.microsoft.com\r\n\
         Authorization: Bearer {token}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    runtime().block_on(async move {
        let mut stream =
            tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    })
}

/// `word` with each ASCII letter in a random case.
fn any_case(word: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), word.len()).prop_map(move |up| {
        word.chars()
            .zip(up)
            .map(|(c, u)| {
                if u {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// `text` with some characters percent-encoded, in either hex case.
fn some_escaped(text: String) -> impl Strategy<Value = String> {
    let len = text.len();
    proptest::collection::vec((prop::bool::weighted(0.15), any::<bool>()), len)
        .prop_map(move |picks| {
            text.bytes()
                .zip(picks)
                .map(|(b, (escape, upper))| match (escape, upper) {
                    (true, true) => format!("%{b:02X}"),
                    (true, false) => format!("%{b:02x}"),
                    (false, _) => (b as char).to_string(),
                })
                .collect()
        })
}

fn segment(word: &'static str) -> impl Strategy<Value = String> {
    any_case(word).prop_flat_map(some_escaped)
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just("/"), 1 => Just("//"), 1 => Just("///")]
}

/// Everything an attacker might try on a path that should mean cancelAll.
fn spelling() -> impl Strategy<Value = String> {
    let version = prop_oneof![
        4 => segment("beta"),
        3 => segment("v1.0"),
        1 => Just("v2.0".to_string()),
    ];
    let governance = prop_oneof![
        3 => segment("identityGovernance").prop_map(|s| format!("{s}/")),
        1 => Just(String::new()),
    ];
    let key = prop_oneof![
        Just(format!("/{REQUEST_ID}")),
        Just(format!("({REQUEST_ID})")),
        Just(format!("('{REQUEST_ID}')")),
        Just(format!("/%27{REQUEST_ID}%27")),
    ];
    let action = prop_oneof![
        4 => segment("cancelAll"),
        2 => (segment("microsoft.graph."), segment("cancelAll"))
            .prop_map(|(ns, a)| format!("{ns}{a}")),
        1 => Just("cancelAll()".to_string()),
        1 => Just("graph.cancelAll".to_string()),
        1 => Just("cancel%41ll".to_string()),
    ];
    let near_miss = prop_oneof![
        6 => Just(""),
        1 => Just("/."),
        1 => Just("/x/.."),
        1 => Just("/%2e%2E"),
        1 => Just(";a=b"),
        1 => Just("%2F"),
        1 => Just("%5C"),
        1 => Just("%252F"),
        1 => Just("%00"),
        1 => Just("%C4%B1"),
        1 => Just("/$value"),
        1 => Just("/microsoft.graph.scheduledPermissionsRequest"),
    ];
    (
        version,
        separator(),
        governance,
        segment("permissionsManagement"),
        separator(),
        segment("scheduledPermissionsRequests"),
        key,
        near_miss,
        separator(),
        action,
        prop_oneof![Just(""), Just("/")],
    )
        .prop_map(
            |(v, s1, g, pm, s2, coll, key, miss, s3, action, end)| {
                format!("/{v}{s1}{g}{pm}{s2}{coll}{key}{miss}{s3}{action}{end}")
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn denied_caller_never_reaches_cancel_all(target in spelling()) {
        let _one_at_a_time = exclusive();
        let before = proxy().graph.received().len();
        let token = issuer().sign(&claims("bob@contoso.example", false));
        let status = send_raw(&target, &token);
        let received = proxy().graph.received();
        for call in &received[before..] {
            prop_assert!(
                !call.routes_to_cancel_all,
                "{target} reached Graph as {} and runs cancelAll (proxy said {status})",
                call.target
            );
        }
    }

    #[test]
    fn allowed_caller_reaches_cancel_all_only_canonically(
        target in spelling()
    ) {
        let _one_at_a_time = exclusive();
        let before = proxy().graph.received().len();
        let status = send_raw(&target, &admin_token());
        let received = proxy().graph.received();
        for call in &received[before..] {
            if !call.routes_to_cancel_all {
                continue;
            }
            let canonical = [
                cancel_path(),
                cancel_path().replacen("/beta/", "/v1.0/", 1),
            ];
            prop_assert!(
                canonical.contains(&call.target),
                "{target} reached Graph as {} (proxy said {status})",
                call.target
            );
            prop_assert!(call.decision_on_disk, "{target}: not audited first");
        }
    }
}

#[test]
fn the_oracle_recognizes_what_graph_would_run() {
    // Guards the oracle itself: if it stopped recognizing cancelAll, the
    // properties above would pass without proving anything.
    use common::lenient::routes_to_cancel_all;
    assert!(routes_to_cancel_all(&cancel_path(), b""));
    assert!(routes_to_cancel_all(
        "/beta/x/scheduledPermıssionsRequests/1/Microsoft.Graph.CANCELALL()",
        b""
    ));
    assert!(routes_to_cancel_all("/beta/a%252Fb/cancel%2541ll", b""));
    let batch = br#"{"requests":[{"id":"1","method":"POST",
        "url":"/identityGovernance/permissionsManagement/scheduledPermissionsRequests/1/cancelAll"}]}"#;
    assert!(routes_to_cancel_all("/beta/$batch", batch));
    assert!(!routes_to_cancel_all("/beta/me", b""));
}
