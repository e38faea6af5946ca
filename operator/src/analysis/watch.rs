//! Running an analysis through one rollout: which window to judge next, the failed intervals so far,
//! and the verdict that stops it.
//!
//! Windows are aligned on the interval (a window of 60 s ends on every minute), so every evaluation of
//! the same rollout, whoever makes it and however often it is asked, judges each window once. A
//! [`Watch`] belongs to one revision's rollout: the counts start again with the next revision. The
//! counts live in memory (the CLI's `--wait`, the controller's process): a restart counts anew, which
//! can only delay a stop, never cause one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::cloudwatch::{self, AlbMeasure, AlbTraffic};
use super::prometheus::{PromQueries, Prometheus};
use super::{Abort, Bound, Check, Judgement, Measurement, Tally, judge};
use crate::Error;
use crate::api::{AlbMetric, AnalysisCheckSpec, AnalysisSpec};
use crate::aws::CloudWatch;

/// How long one Prometheus query may take.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(10);

/// The rollout being judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The task-definition ARN being rolled out.
    pub new_revision: String,
    /// The task-definition ARN serving before it.
    pub old_revision: String,
    /// The load balancer and both target groups, for the load balancer's metrics.
    pub traffic: AlbTraffic,
    /// When the new revision's deployment started: earlier windows are not judged.
    pub started: SystemTime,
}

/// One check's verdict on one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The check.
    pub check: String,
    /// What both revisions measured.
    pub measured: Measurement,
    /// The judgement.
    pub judgement: Judgement,
    /// Failed windows of this check so far in the rollout.
    pub failed: u32,
    /// The failed windows that stop the rollout.
    pub limit: u32,
    /// The end of the window judged.
    pub window_end: SystemTime,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Measurement { new, old, window } = self.measured;
        let value = |v: Option<f64>| v.map_or_else(|| "no data".to_owned(), super::number);
        let result = match &self.judgement {
            Judgement::Passed => "passed".to_owned(),
            Judgement::Failed(why) => format!("failed ({} of {} failed windows): {why}", self.failed, self.limit),
            Judgement::Inconclusive(why) => format!("inconclusive: {why}"),
        };
        write!(
            f,
            "check {} {result}; new revision {} over {} requests, old revision {} over {} requests, window {}",
            self.check,
            value(new.value),
            super::number(new.requests),
            value(old.value),
            super::number(old.requests),
            humantime::format_duration(window)
        )
    }
}

/// What one evaluation found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No window ended since the last one judged (or the rollout started after it).
    Waiting,
    /// The window that just ended, judged by every check; none reached its limit.
    Judged(Vec<Verdict>),
    /// A check reached its limit: the rollout must stop.
    Stop(Abort, Vec<Verdict>),
}

/// The analysis of one revision's rollout, across evaluations.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    revision: String,
    judged_until: Option<SystemTime>,
    tally: Tally,
    last: Vec<Verdict>,
}

impl Watch {
    /// A watch that has judged nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The verdicts of the last window judged.
    pub fn last(&self) -> &[Verdict] {
        &self.last
    }

    /// Judges the window that ended last before `now`, unless it was judged already. One GetMetricData
    /// call for all load-balancer checks, two PromQL queries per revision per Prometheus check.
    pub async fn evaluate(
        &mut self,
        spec: &AnalysisSpec,
        subject: &Subject,
        cloudwatch: &dyn CloudWatch,
        now: SystemTime,
    ) -> Result<Outcome, Error> {
        if self.revision != subject.new_revision {
            *self = Watch { revision: subject.new_revision.clone(), ..Watch::default() };
        }
        let interval = Duration::from_secs(u64::try_from(spec.interval_seconds.max(60)).unwrap_or(60));
        let end = window_end(now, interval);
        if end <= subject.started || self.judged_until.is_some_and(|j| j >= end) {
            return Ok(Outcome::Waiting);
        }
        let prometheus = match &spec.prometheus {
            Some(p) => Some(Prometheus::new(&p.address, PROMETHEUS_TIMEOUT)?),
            None => None,
        };
        // Every check is measured before any is counted: a source that fails leaves the window unjudged
        // as a whole, so judging it again later never counts a failure twice.
        // Every load-balancer check of the window in one GetMetricData call.
        let alb: Vec<AlbMeasure> = spec
            .checks
            .iter()
            .filter_map(|c| c.alb)
            .map(|m| match m {
                AlbMetric::ErrorRatio => AlbMeasure::ErrorRatio,
                AlbMetric::LatencyP99 => AlbMeasure::LatencyP99,
            })
            .collect();
        let mut alb_measured = match alb.is_empty() {
            true => Vec::new(),
            false => cloudwatch::measure_all(cloudwatch, &alb, &subject.traffic, interval, end).await?,
        }
        .into_iter();
        let mut measurements = Vec::new();
        for check_spec in &spec.checks {
            let check = check(check_spec);
            let measured = match (&check_spec.alb, &check_spec.prometheus, &prometheus) {
                (Some(_), ..) => alb_measured
                    .next()
                    .ok_or_else(|| Error::Analysis(format!("check {}: no load-balancer measurement", check.name)))?,
                (None, Some(q), Some(server)) => {
                    let queries = PromQueries { value: q.query.clone(), requests: q.requests_query.clone() };
                    queries.validate().map_err(|e| Error::Analysis(format!("check {}: {e}", check.name)))?;
                    let (new, old) = (revision_number(&subject.new_revision), revision_number(&subject.old_revision));
                    server.measure(&queries, new, old, interval, end).await?
                }
                _ => {
                    return Err(Error::Analysis(format!("check {} has no source it can be measured with", check.name)));
                }
            };
            measurements.push((check, measured));
        }
        let mut verdicts = Vec::new();
        let mut stop = None;
        for (check, measured) in measurements {
            let judgement = judge(&check, &measured);
            let aborted = self.tally.record(&check, &measured, &judgement);
            verdicts.push(Verdict {
                check: check.name.clone(),
                measured,
                judgement,
                failed: self.tally.failures(&check.name),
                limit: check.failed_intervals.max(1),
                window_end: end,
            });
            if stop.is_none() {
                stop = aborted;
            }
        }
        self.judged_until = Some(end);
        self.last = verdicts.clone();
        Ok(match stop {
            Some(abort) => Outcome::Stop(abort, verdicts),
            None => Outcome::Judged(verdicts),
        })
    }
}

/// The end of the last whole window before `now`, windows aligned on `interval` since the epoch.
pub fn window_end(now: SystemTime, interval: Duration) -> SystemTime {
    let seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let step = interval.as_secs().max(1);
    UNIX_EPOCH + Duration::from_secs(seconds - seconds % step)
}

/// The judge's view of a check in the spec.
pub fn check(spec: &AnalysisCheckSpec) -> Check {
    Check {
        name: spec.name.clone(),
        bound: Bound { max: spec.max, max_ratio_to_old: spec.max_ratio_to_old },
        min_requests: spec.min_requests as f64,
        failed_intervals: u32::try_from(spec.failed_intervals).unwrap_or(1),
    }
}

/// The revision number of a task-definition ARN (`...:task-definition/family:7` is `7`): what a
/// service's metrics label its revision with.
pub fn revision_number(arn: &str) -> &str {
    arn.rsplit_once(':').map_or(arn, |(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_on_the_interval() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(window_end(at(1_800_000_119), Duration::from_secs(60)), at(1_800_000_060));
        assert_eq!(window_end(at(1_800_000_419), Duration::from_secs(300)), at(1_800_000_300));
        assert_eq!(revision_number("arn:aws:ecs:us-east-1:1:task-definition/shop-api:17"), "17");
    }
}
