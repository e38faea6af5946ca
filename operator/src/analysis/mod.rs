//! Analysis: measuring a new revision against the old one on the same window while ECS shifts traffic
//! between them, and judging it.
//!
//! A [`Check`] names a measure (a ratio, a latency, any PromQL expression), the bound the new revision
//! must stay within (absolute, relative to the old revision, or both), the requests it needs before it
//! may judge, and how many failed intervals abort the rollout. Sources ([`prometheus`]) measure both
//! revisions on one window; [`judge`] turns a measurement into a [`Judgement`] and [`Tally`] counts
//! the failed intervals of a rollout until one check reaches its limit and yields an [`Abort`]. All of
//! this is pure except the sources, so the verdicts are tested without a clock or a server.

pub mod cloudwatch;
pub mod prometheus;
pub mod watch;

use std::fmt;
use std::time::Duration;

/// The bound a check's value must stay within for the new revision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// Fail when the new revision's value is above this.
    pub max: Option<f64>,
    /// Fail when the new revision's value is more than this many times the old revision's.
    pub max_ratio_to_old: Option<f64>,
}

/// One check of an analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Its name, as status and events show it.
    pub name: String,
    /// What the new revision must stay within.
    pub bound: Bound,
    /// Requests the new revision must have served in the window before the check may judge; below it
    /// the interval is inconclusive (neither passed nor failed).
    pub min_requests: f64,
    /// Failed intervals (over the whole rollout, not only consecutive ones) that abort it.
    pub failed_intervals: u32,
}

/// What one revision measured in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The value (`None`: the source had no data for this revision in the window).
    pub value: Option<f64>,
    /// Requests the revision served in the window.
    pub requests: f64,
}

/// Both revisions, measured on the same window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The revision being rolled out.
    pub new: Sample,
    /// The revision serving before the rollout.
    pub old: Sample,
    /// The window both were measured over.
    pub window: Duration,
}

/// The verdict of one check on one interval.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// Too few requests (or no data) to judge; neither passed nor failed.
    Inconclusive(String),
    /// Within the bound.
    Passed,
    /// Outside the bound, and why.
    Failed(String),
}

/// Judges one measurement.
///
/// With both an absolute and a relative bound, the check fails only when both are exceeded: the
/// absolute one keeps tiny values (0.01% against 0.001%) from failing on the ratio, and the relative
/// one keeps a problem both revisions share (a database outage) from being blamed on the release.
/// When the old revision served too few requests to compare with, only the absolute bound judges.
pub fn judge(check: &Check, measured: &Measurement) -> Judgement {
    let Measurement { new, old, window } = *measured;
    let window = humantime::format_duration(window);
    if new.requests < check.min_requests {
        return Judgement::Inconclusive(format!(
            "the new revision served {} requests in {window}, {} needed to judge",
            number(new.requests),
            number(check.min_requests)
        ));
    }
    let Some(value) = new.value else {
        return Judgement::Inconclusive(format!("no value for the new revision in {window}"));
    };
    let over_max = check.bound.max.map(|max| (value > max, format!("above {}", number(max))));
    let comparable = old.value.filter(|_| old.requests >= check.min_requests);
    let over_ratio = match (check.bound.max_ratio_to_old, comparable) {
        (Some(ratio), Some(old_value)) => Some((
            value > old_value * ratio,
            format!("more than {}x the old revision's {}", number(ratio), number(old_value)),
        )),
        _ => None,
    };
    let failed: Vec<String> = match (over_max, over_ratio) {
        (None, None) => {
            return Judgement::Inconclusive(format!(
                "the old revision served {} requests in {window}, too few to compare with",
                number(old.requests)
            ));
        }
        (Some((true, a)), Some((true, b))) => vec![a, b],
        (Some((true, a)), None) | (None, Some((true, a))) => vec![a],
        _ => Vec::new(),
    };
    if failed.is_empty() {
        Judgement::Passed
    } else {
        Judgement::Failed(format!("new revision {}: {}", number(value), failed.join(" and ")))
    }
}

/// A rollout stopped by its analysis: the check, both revisions' values and the window, for status,
/// the event and the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    /// The check that reached its limit.
    pub check: String,
    /// What the last failed interval measured.
    pub measured: Measurement,
    /// Why that interval failed.
    pub reason: String,
    /// Failed intervals counted.
    pub failed_intervals: u32,
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Measurement { new, old, window } = self.measured;
        let value = |s: Sample| s.value.map_or_else(|| "no data".to_owned(), number);
        write!(
            f,
            "check {} failed {} intervals: {} (new revision {} over {} requests, old revision {} over {} requests, window {})",
            self.check,
            self.failed_intervals,
            self.reason,
            value(new),
            number(new.requests),
            value(old),
            number(old.requests),
            humantime::format_duration(window)
        )
    }
}

/// The failed intervals of one rollout, per check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    failures: Vec<(String, u32)>,
}

impl Tally {
    /// Records one interval's judgement of `check`; the [`Abort`] once the check has failed
    /// `failed_intervals` times.
    pub fn record(&mut self, check: &Check, measured: &Measurement, judgement: &Judgement) -> Option<Abort> {
        let Judgement::Failed(reason) = judgement else { return None };
        let count = match self.failures.iter_mut().find(|(name, _)| *name == check.name) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                self.failures.push((check.name.clone(), 1));
                1
            }
        };
        (count >= check.failed_intervals.max(1)).then(|| Abort {
            check: check.name.clone(),
            measured: *measured,
            reason: reason.clone(),
            failed_intervals: count,
        })
    }

    /// Failed intervals of `check` so far.
    pub fn failures(&self, check: &str) -> u32 {
        self.failures.iter().find(|(name, _)| name == check).map_or(0, |(_, count)| *count)
    }
}

/// A number as people read it: integers without decimals, small ratios with four significant digits.
pub(crate) fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(max: Option<f64>, ratio: Option<f64>) -> Check {
        Check {
            name: "errors".into(),
            bound: Bound { max, max_ratio_to_old: ratio },
            min_requests: 100.0,
            failed_intervals: 2,
        }
    }

    fn measured(new: (f64, f64), old: (f64, f64)) -> Measurement {
        Measurement {
            new: Sample { value: Some(new.0), requests: new.1 },
            old: Sample { value: Some(old.0), requests: old.1 },
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_check_needs_its_minimum_sample_before_it_judges() {
        let check = errors(Some(0.01), None);
        let judgement = judge(&check, &measured((0.5, 99.0), (0.0, 1000.0)));
        assert!(
            matches!(&judgement, Judgement::Inconclusive(why) if why.contains("99 requests in 1m, 100 needed")),
            "{judgement:?}"
        );
        assert!(matches!(judge(&check, &measured((0.5, 100.0), (0.0, 1000.0))), Judgement::Failed(_)));
        let no_data =
            Measurement { new: Sample { value: None, requests: 500.0 }, ..measured((0.0, 0.0), (0.0, 500.0)) };
        assert!(matches!(judge(&check, &no_data), Judgement::Inconclusive(_)));
    }

    #[test]
    fn absolute_and_relative_bounds_must_both_be_exceeded_when_both_are_set() {
        let both = errors(Some(0.01), Some(2.0));
        // 5% against 0.1%: over both.
        let bad = judge(&both, &measured((0.05, 2000.0), (0.001, 2000.0)));
        assert_eq!(
            bad,
            Judgement::Failed("new revision 0.05: above 0.01 and more than 2x the old revision's 0.001".into())
        );
        // 5% against 4% (an outage both share): over the absolute bound only.
        assert_eq!(judge(&both, &measured((0.05, 2000.0), (0.04, 2000.0))), Judgement::Passed);
        // 0.5% against 0.1%: over the ratio only.
        assert_eq!(judge(&both, &measured((0.005, 2000.0), (0.001, 2000.0))), Judgement::Passed);
        // Too little traffic on the old revision to compare: the absolute bound alone judges.
        assert!(matches!(judge(&both, &measured((0.05, 2000.0), (0.0, 10.0))), Judgement::Failed(_)));
        let ratio_only = errors(None, Some(3.0));
        assert!(matches!(judge(&ratio_only, &measured((0.05, 2000.0), (0.0, 10.0))), Judgement::Inconclusive(_)));
        assert!(matches!(judge(&ratio_only, &measured((0.31, 2000.0), (0.1, 2000.0))), Judgement::Failed(_)));
        assert_eq!(judge(&ratio_only, &measured((0.3, 2000.0), (0.1, 2000.0))), Judgement::Passed);
    }

    #[test]
    fn the_rollout_aborts_when_one_check_reaches_its_failed_intervals() {
        let check = errors(Some(0.01), None);
        let latency = Check { name: "latency".into(), failed_intervals: 1, ..errors(None, Some(3.0)) };
        let mut tally = Tally::default();
        let bad = measured((0.05, 2000.0), (0.001, 2000.0));
        let good = measured((0.001, 2000.0), (0.001, 2000.0));
        assert_eq!(tally.record(&check, &bad, &judge(&check, &bad)), None);
        assert_eq!(tally.record(&check, &good, &judge(&check, &good)), None, "a passed interval does not abort");
        assert_eq!(tally.record(&latency, &good, &judge(&latency, &good)), None);
        assert_eq!(tally.failures("errors"), 1);
        let abort = tally.record(&check, &bad, &judge(&check, &bad)).expect("the second failure aborts");
        assert_eq!(abort.failed_intervals, 2);
        assert_eq!(
            abort.to_string(),
            "check errors failed 2 intervals: new revision 0.05: above 0.01 (new revision 0.05 over 2000 requests, \
             old revision 0.001 over 2000 requests, window 1m)"
        );
    }
}
