//! Prometheus metrics of the controller, under the `ecsop_` prefix.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `ecsop_reconcile_total` | `result` (`success`, `error`) | reconciles |
//! | `ecsop_reconcile_errors_total` | `kind` | failed reconciles by error kind |
//! | `ecsop_reconcile_duration_seconds` | | reconcile wall time (histogram) |
//! | `ecsop_aws_calls_total` | `service`, `operation`, `outcome` (`ok`, `throttled`, error kind) | AWS call attempts |
//! | `ecsop_aws_budget_calls_per_second` | | the budget of AWS calls per second and region (`--aws-calls-per-second`; 0: none) |
//! | `ecsop_aws_budget_wait_seconds_total` | `service` | time calls waited for the budget before they were sent |
//! | `ecsop_rollouts_total` | `outcome`, `strategy` (`completed`, `failed`, `rolled_back`, `analysis_failed`, `aborted`, `deadline_exceeded`; `rolling`, `blueGreen`, `canary`, `linear`) | finished rollouts |
//! | `ecsop_analysis_windows_total` | `check`, `result` (`passed`, `failed`, `inconclusive`) | windows analysis judged |
//! | `ecsop_analysis_value` | `apideployment`, `check`, `revision` (`new`, `old`) | each revision's value in the last window judged, while the rollout runs |
//! | `ecsop_drift_corrections_total` | | reconciles of an unchanged generation that had to write |
//! | `ecsop_apideployments` | `ready` (`True`, `False`, `Unknown`) | ApiDeployments by Ready condition |
//! | `ecsop_leader` | | 1 while this replica holds the lease |

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::aws::CallRecord;

/// Label set with one `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// success or error.
    pub result: String,
}

/// Label set with one `service` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    /// The AWS service's signing name.
    pub service: String,
}

/// Label set with one `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The error kind.
    pub kind: String,
}

/// Labels of an AWS call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Service.
    pub service: String,
    /// Operation.
    pub operation: String,
    /// ok, throttled or an error kind.
    pub outcome: String,
}

/// Label set with one `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// The outcome.
    pub outcome: String,
}

/// Labels of a finished rollout.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    /// How it ended.
    pub outcome: String,
    /// Its deployment strategy.
    pub strategy: String,
}

/// Labels of a judged window.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabels {
    /// The check.
    pub check: String,
    /// passed, failed or inconclusive.
    pub result: String,
}

/// Labels of a value analysis measured.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValueLabels {
    /// `namespace/name`.
    pub apideployment: String,
    /// The check.
    pub check: String,
    /// new or old.
    pub revision: String,
}

/// Label set with one `ready` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabel {
    /// True, False or Unknown.
    pub ready: String,
}

/// Every metric of the controller, and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    duration: Histogram,
    aws_calls: Family<CallLabels, Counter>,
    budget: Gauge<f64, AtomicU64>,
    budget_wait: Family<ServiceLabel, Counter<f64, AtomicU64>>,
    rollouts: Family<RolloutLabels, Counter>,
    windows: Family<WindowLabels, Counter>,
    values: Family<ValueLabels, Gauge<f64, AtomicU64>>,
    values_of: Mutex<HashMap<String, Vec<ValueLabels>>>,
    drift: Counter,
    by_ready: Family<ReadyLabel, Gauge<i64, AtomicI64>>,
    leader: Gauge<i64, AtomicI64>,
    ready_of: Mutex<HashMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ecsop");
        let reconciles = Family::<ResultLabel, Counter>::default();
        let errors = Family::<KindLabel, Counter>::default();
        let duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let aws_calls = Family::<CallLabels, Counter>::default();
        let budget = Gauge::<f64, AtomicU64>::default();
        let budget_wait = Family::<ServiceLabel, Counter<f64, AtomicU64>>::default();
        let rollouts = Family::<RolloutLabels, Counter>::default();
        let windows = Family::<WindowLabels, Counter>::default();
        let values = Family::<ValueLabels, Gauge<f64, AtomicU64>>::default();
        let drift = Counter::default();
        let by_ready = Family::<ReadyLabel, Gauge<i64, AtomicI64>>::default();
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register("reconcile", "Reconciles by result", reconciles.clone());
        registry.register("reconcile_errors", "Failed reconciles by error kind", errors.clone());
        registry.register("reconcile_duration_seconds", "Reconcile wall time", duration.clone());
        registry.register("aws_calls", "AWS call attempts by service, operation and outcome", aws_calls.clone());
        registry.register(
            "aws_budget_calls_per_second",
            "The budget of AWS calls per second and region (0: none)",
            budget.clone(),
        );
        registry.register(
            "aws_budget_wait_seconds",
            "Time AWS calls waited for the budget before they were sent, by service",
            budget_wait.clone(),
        );
        registry.register("rollouts", "Finished rollouts by outcome and strategy", rollouts.clone());
        registry.register("analysis_windows", "Windows analysis judged, by check and result", windows.clone());
        registry.register(
            "analysis_value",
            "Each revision's value in the last window analysis judged, while the rollout runs",
            values.clone(),
        );
        registry.register(
            "drift_corrections",
            "Reconciles of an unchanged generation that had to write",
            drift.clone(),
        );
        registry.register("apideployments", "ApiDeployments by Ready condition", by_ready.clone());
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        Metrics {
            registry,
            reconciles,
            errors,
            duration,
            aws_calls,
            budget,
            budget_wait,
            rollouts,
            windows,
            values,
            values_of: Mutex::default(),
            drift,
            by_ready,
            leader,
            ready_of: Mutex::default(),
        }
    }
}

impl Metrics {
    /// A reconcile finished after `seconds`.
    pub fn reconciled(&self, seconds: f64, error_kind: Option<&str>) {
        self.duration.observe(seconds);
        let result = if error_kind.is_some() { "error" } else { "success" };
        self.reconciles.get_or_create(&ResultLabel { result: result.into() }).inc();
        if let Some(kind) = error_kind {
            self.errors.get_or_create(&KindLabel { kind: kind.into() }).inc();
        }
    }

    /// The budget of AWS calls per second and region (`None`: none).
    pub fn set_aws_budget(&self, per_second: Option<f64>) {
        self.budget.set(per_second.unwrap_or(0.0));
    }

    /// An AWS call attempt ended.
    pub fn aws_call(&self, record: &CallRecord) {
        if !record.budget_wait.is_zero() {
            self.budget_wait
                .get_or_create(&ServiceLabel { service: record.service.into() })
                .inc_by(record.budget_wait.as_secs_f64());
        }
        self.aws_calls
            .get_or_create(&CallLabels {
                service: record.service.into(),
                operation: record.operation.into(),
                outcome: record.outcome.label().into(),
            })
            .inc();
    }

    /// A rollout with `strategy` finished with `outcome`.
    pub fn rollout(&self, outcome: &str, strategy: &str) {
        self.rollouts.get_or_create(&RolloutLabels { outcome: outcome.into(), strategy: strategy.into() }).inc();
    }

    /// Analysis judged a window of `key`'s (namespace/name) rollout: `check` gave `result`, and the new
    /// and old revisions measured `new` and `old` (`None`: no data).
    pub fn analysed(&self, key: &str, check: &str, result: &str, new: Option<f64>, old: Option<f64>) {
        self.windows.get_or_create(&WindowLabels { check: check.into(), result: result.into() }).inc();
        let mut of = self.values_of.lock().unwrap_or_else(|e| e.into_inner());
        let kept = of.entry(key.to_string()).or_default();
        for (revision, value) in [("new", new), ("old", old)] {
            let labels = ValueLabels { apideployment: key.into(), check: check.into(), revision: revision.into() };
            match value {
                Some(v) => {
                    self.values.get_or_create(&labels).set(v);
                    if !kept.contains(&labels) {
                        kept.push(labels);
                    }
                }
                None => {
                    self.values.remove(&labels);
                }
            }
        }
    }

    /// `key`'s rollout is no longer judged: its values go.
    pub fn analysis_ended(&self, key: &str) {
        let gone = self.values_of.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        for labels in gone.into_iter().flatten() {
            self.values.remove(&labels);
        }
    }

    /// A reconcile corrected drift.
    pub fn drift_corrected(&self) {
        self.drift.inc();
    }

    /// `key` (namespace/name) now has Ready=`ready`; `None` when it is gone.
    pub fn set_ready(&self, key: &str, ready: Option<&str>) {
        let mut map = self.ready_of.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = map.remove(key) {
            self.by_ready.get_or_create(&ReadyLabel { ready: old }).dec();
        }
        if let Some(new) = ready {
            self.by_ready.get_or_create(&ReadyLabel { ready: new.into() }).inc();
            map.insert(key.to_string(), new.to_string());
        }
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_the_prefix_and_labels() {
        let m = Metrics::default();
        m.reconciled(0.02, None);
        m.reconciled(0.5, Some("throttled"));
        m.rollout("rolled_back", "rolling");
        m.analysed("prod/books", "errors", "failed", Some(0.05), Some(0.001));
        m.set_ready("prod/a", Some("True"));
        m.set_ready("prod/b", Some("False"));
        m.set_ready("prod/b", Some("True"));
        m.set_leader(true);
        let text = m.render();
        assert!(text.contains("ecsop_reconcile_total{result=\"success\"} 1"), "{text}");
        assert!(text.contains("ecsop_reconcile_errors_total{kind=\"throttled\"} 1"), "{text}");
        assert!(text.contains("ecsop_rollouts_total{outcome=\"rolled_back\",strategy=\"rolling\"} 1"), "{text}");
        assert!(text.contains("ecsop_analysis_windows_total{check=\"errors\",result=\"failed\"} 1"), "{text}");
        assert!(
            text.contains("ecsop_analysis_value{apideployment=\"prod/books\",check=\"errors\",revision=\"new\"} 0.05"),
            "{text}"
        );
        m.analysis_ended("prod/books");
        assert!(!m.render().contains("ecsop_analysis_value{"), "the values go with the rollout");
        assert!(text.contains("ecsop_apideployments{ready=\"True\"} 2"), "{text}");
        assert!(text.contains("ecsop_apideployments{ready=\"False\"} 0"), "{text}");
        assert!(text.contains("ecsop_leader 1"), "{text}");
        assert!(text.contains("ecsop_reconcile_duration_seconds_bucket"), "{text}");
    }

    #[test]
    fn the_aws_budget_and_the_time_waited_for_it_are_exposed() {
        let m = Metrics::default();
        assert!(m.render().contains("ecsop_aws_budget_calls_per_second 0.0"), "{}", m.render());
        m.set_aws_budget(Some(25.0));
        let call = |budget_wait| CallRecord {
            service: "ecs",
            operation: "DescribeServices",
            outcome: crate::aws::Outcome::Ok,
            duration: std::time::Duration::from_millis(2),
            budget_wait,
        };
        m.aws_call(&call(std::time::Duration::from_millis(250)));
        m.aws_call(&call(std::time::Duration::ZERO));
        m.aws_call(&call(std::time::Duration::from_millis(500)));
        let text = m.render();
        assert!(text.contains("ecsop_aws_budget_calls_per_second 25.0"), "{text}");
        assert!(text.contains("ecsop_aws_budget_wait_seconds_total{service=\"ecs\"} 0.75"), "{text}");
    }
}
