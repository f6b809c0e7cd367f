//! The shipped deployment files agree with the proxy: their configs load,
//! and the manifests probe and scrape the admin port those configs name.

use std::path::Path;

use cancelguard::config::Config;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn gateway_config_loads_with_tls_off_loopback() {
    let config =
        Config::load(&root().join("deploy/kubernetes/gateway/proxy.toml"))
            .expect("loads");
    assert!(
        config.server.tls.is_some(),
        "a network-facing gateway must use TLS"
    );
    assert!(!config.server.listen.ip().is_loopback());
    assert!(config.audit.stdout);
    let manifest = read("deploy/kubernetes/gateway/statefulset.yaml");
    assert!(
        manifest.contains(&format!(
            "containerPort: {}",
            config.server.listen.port()
        ))
    );
    assert!(manifest.contains(&format!(
        "containerPort: {}",
        config.server.admin_listen.port()
    )));
    assert!(
        manifest.contains("path: /healthz")
            && manifest.contains("path: /readyz")
    );
    assert!(
        manifest.contains("volumeClaimTemplates"),
        "each replica keeps its own chain"
    );
    assert!(manifest.contains("/etc/cancelguard/tls"));
}

#[test]
fn sidecar_config_loads_on_loopback() {
    let config =
        Config::load(&root().join("deploy/kubernetes/sidecar/proxy.toml"))
            .expect("loads");
    assert!(config.server.listen.ip().is_loopback());
    assert!(
        config.warnings.iter().all(|w| !w.contains("in clear")),
        "{:?}",
        config.warnings
    );
    let manifest = read("deploy/kubernetes/sidecar/deployment.yaml");
    assert!(manifest.contains(&format!(
        "containerPort: {}",
        config.server.admin_listen.port()
    )));
    assert!(manifest.contains(&format!(
        "http://127.0.0.1:{}",
        config.server.listen.port()
    )));
    assert!(manifest.contains("path: /readyz"));
}

#[test]
fn image_runs_the_documented_command() {
    let dockerfile = read("deploy/Dockerfile");
    assert!(dockerfile.contains("--config\", \"/etc/cancelguard/proxy.toml\""));
    for manifest in [
        "deploy/kubernetes/gateway/statefulset.yaml",
        "deploy/kubernetes/sidecar/deployment.yaml",
    ] {
        assert!(
            read(manifest).contains("mountPath: /etc/cancelguard/proxy.toml"),
            "{manifest}"
        );
    }
}
