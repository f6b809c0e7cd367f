//! Prometheus metrics, served as text on the admin listener's `/metrics`.
//!
//! Counters are bumped on the request path without locks (atomics behind
//! the families); values owned by other parts (keys, token cache, audit
//! writer) are read when the metrics are scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a response: which kind of route, which status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    pub route: &'static str,
    pub status: u16,
}

/// Labels of a recorded decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: &'static str,
    pub reason: &'static str,
}

/// Values read from elsewhere when metrics are scraped.
pub struct Snapshot {
    pub keys_loaded: bool,
    pub keys_stale: bool,
    pub signature_checks: u64,
    pub cached_tokens: usize,
    pub audit_healthy: bool,
    pub audit_syncs: u64,
    pub audit_write_failures: u64,
    pub draining: bool,
}

/// Every metric cancelguard exports.
pub struct Metrics {
    registry: Registry,
    responses: Family<ResponseLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    upstream_seconds: Histogram,
    keys_loaded: Gauge,
    keys_stale: Gauge,
    signature_checks: Counter<u64, AtomicU64>,
    cached_tokens: Gauge,
    audit_healthy: Gauge,
    audit_syncs: Counter<u64, AtomicU64>,
    audit_write_failures: Counter<u64, AtomicU64>,
    draining: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `cancelguard_` prefix.
    pub fn new() -> Self {
        // Graph usually answers within a second; the tail shows timeouts.
        let buckets = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let metrics = Self {
            registry: Registry::default(),
            responses: Family::default(),
            decisions: Family::default(),
            upstream_seconds: Histogram::new(buckets),
            keys_loaded: Gauge::default(),
            keys_stale: Gauge::default(),
            signature_checks: Counter::default(),
            cached_tokens: Gauge::default(),
            audit_healthy: Gauge::default(),
            audit_syncs: Counter::default(),
            audit_write_failures: Counter::default(),
            draining: Gauge::default(),
        };

        // Registered handles share their values with the fields above.
        let mut registry = Registry::with_prefix("cancelguard");
        registry.register(
            "responses",
            "Responses sent, by route kind and status",
            metrics.responses.clone(),
        );
        registry.register(
            "decisions",
            "cancelAll decisions recorded, by decision and reason",
            metrics.decisions.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time Graph took to answer forwarded cancelAll calls",
            metrics.upstream_seconds.clone(),
        );
        let counters = [
            (
                "token_signature_checks",
                "Token signatures checked (cache hits skip the check)",
                &metrics.signature_checks,
            ),
            (
                "audit_fsyncs",
                "fsyncs of the audit trail (group commit shares one per batch)",
                &metrics.audit_syncs,
            ),
            (
                "audit_write_failures",
                "Audit records that could not be written; their calls got 503",
                &metrics.audit_write_failures,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let gauges = [
            (
                "signing_keys_loaded",
                "1 once signing keys have loaded",
                &metrics.keys_loaded,
            ),
            (
                "signing_keys_stale",
                "1 while the last key refresh failed",
                &metrics.keys_stale,
            ),
            (
                "token_cache_entries",
                "Verified tokens remembered",
                &metrics.cached_tokens,
            ),
            (
                "audit_writable",
                "1 while the audit trail accepts records",
                &metrics.audit_healthy,
            ),
            ("draining", "1 once shutdown has begun", &metrics.draining),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts a response.
    pub fn response(&self, route: &'static str, status: u16) {
        self.responses
            .get_or_create(&ResponseLabels { route, status })
            .inc();
    }

    /// Counts a recorded decision.
    pub fn decision(&self, decision: &'static str, reason: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels { decision, reason })
            .inc();
    }

    /// Observes how long Graph took.
    pub fn upstream(&self, elapsed: Duration) {
        self.upstream_seconds.observe(elapsed.as_secs_f64());
    }

    /// Renders the Prometheus text format, with `snapshot` folded in.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        self.keys_loaded.set(snapshot.keys_loaded.into());
        self.keys_stale.set(snapshot.keys_stale.into());
        self.cached_tokens.set(snapshot.cached_tokens as i64);
        self.audit_healthy.set(snapshot.audit_healthy.into());
        self.draining.set(snapshot.draining.into());
        // The verifier and the audit writer own these counts; mirror them.
        let mirrored = [
            (&self.signature_checks, snapshot.signature_checks),
            (&self.audit_syncs, snapshot.audit_syncs),
            (&self.audit_write_failures, snapshot.audit_write_failures),
        ];
        for (counter, value) in mirrored {
            counter.inner().store(value, Ordering::Relaxed);
        }

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
