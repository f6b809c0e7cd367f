//! SIGHUP reloads the config file. Alone in its own test binary, since the
//! signal goes to the whole process.

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;

#[tokio::test]
async fn sighup_reloads_the_config_file() {
    let proxy = Harness::start(Setup::default()).await;
    let bob = issuer().sign(&claims("bob@contoso.example", false));
    assert_eq!(
        proxy.post(&cancel_path(), Some(&bob)).await.status,
        StatusCode::FORBIDDEN
    );

    let path = proxy.dir.path().join("proxy.toml");
    let original = std::fs::read_to_string(&path).expect("config");
    let allow_bob = format!(
        "{original}\n[[policy.rules]]\nname = \"bob\"\neffect = \"allow\"\nusers = [\"bob@contoso.example\"]\n"
    );
    std::fs::write(&path, allow_bob).expect("write");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    // The reload runs on its own task; give it a bounded moment.
    let mut last = StatusCode::FORBIDDEN;
    for _ in 0..100 {
        last = proxy.post(&cancel_path(), Some(&bob)).await.status;
        if last == StatusCode::NO_CONTENT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last, StatusCode::NO_CONTENT, "SIGHUP did not reload");
    proxy.stop_verified().await;
}
