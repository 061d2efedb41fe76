//! Prometheus metrics, rendered by the `/metrics` route (no listener of the exporter's own).
//!
//! The recorder is process-wide (installed on first use). Gauges and counters that mirror
//! the gate status are refreshed from [`GateStatus`] on every scrape; the runtime records
//! step durations with [`record_step`].

use super::link::GateStatus;
use crate::record::Outcome;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Histogram of the duration of each transit step, in seconds (label `step`).
pub const STEP_DURATION: &str = "echannel_step_duration_seconds";
/// Histogram of API request handling time, in seconds (label `route`).
pub const API_DURATION: &str = "echannel_api_request_duration_seconds";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle; `None` if another metrics recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let steps = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];
            let api = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(STEP_DURATION.into()), &steps)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(API_DURATION.into()), &api))
                .ok()
                .and_then(|b| b.install_recorder().ok())
        })
        .as_ref()
}

/// Records how long one transit step took (hook for the runtime).
pub fn record_step(step: &str, seconds: f64) {
    let _ = handle();
    metrics::histogram!(STEP_DURATION, "step" => step.to_owned()).record(seconds);
}

/// Records the handling time of an API request.
pub(crate) fn record_request(route: &'static str, seconds: f64) {
    metrics::histogram!(API_DURATION, "route" => route).record(seconds);
}

/// Counts a failed login.
pub(crate) fn record_failed_login() {
    metrics::counter!("echannel_api_failed_logins_total").increment(1);
}

/// Refreshes the status-derived metrics of `gate` and renders everything.
pub fn render(gate: &str, status: &GateStatus, watchlist_age_s: Option<u64>) -> String {
    let Some(h) = handle() else {
        return "# metrics unavailable: another recorder is installed\n".into();
    };
    let g = gate.to_owned();
    for o in Outcome::ALL {
        metrics::counter!("echannel_transits_total", "gate" => g.clone(), "outcome" => o.as_str())
            .absolute(status.counters.get(o));
    }
    for d in &status.devices {
        metrics::gauge!("echannel_device_healthy", "gate" => g.clone(), "device" => d.device.to_string())
            .set(if d.healthy { 1.0 } else { 0.0 });
    }
    let faults = &status.snapshot.faults;
    for d in faults {
        if !status.devices.iter().any(|h| h.device == *d) {
            metrics::gauge!("echannel_device_healthy", "gate" => g.clone(), "device" => d.to_string())
                .set(0.0);
        }
    }
    if let Some(w) = &status.watchlist {
        metrics::gauge!("echannel_watchlist_version", "gate" => g.clone()).set(w.version as f64);
        metrics::gauge!("echannel_watchlist_stale", "gate" => g.clone()).set(if w.stale {
            1.0
        } else {
            0.0
        });
        if let Some(age) = watchlist_age_s {
            metrics::gauge!("echannel_watchlist_age_seconds", "gate" => g.clone()).set(age as f64);
        }
    }
    if let Some(b) = status.upstream_backlog {
        metrics::gauge!("echannel_upstream_backlog", "gate" => g.clone()).set(b as f64);
    }
    metrics::gauge!("echannel_active_alarms", "gate" => g.clone())
        .set(status.snapshot.alarms.len() as f64);
    metrics::gauge!("echannel_in_service", "gate" => g).set(
        if status.snapshot.mode == crate::record::Mode::Ready
            || status.snapshot.mode == crate::record::Mode::Transit
        {
            1.0
        } else {
            0.0
        },
    );
    h.run_upkeep();
    h.render()
}
