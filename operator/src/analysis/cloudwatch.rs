//! The CloudWatch source: the load balancer's own metrics of each target group (`AWS/ApplicationELB`),
//! both revisions in one GetMetricData call per interval.
//!
//! ALBs publish per target group every minute: `RequestCount` (the sample), `HTTPCode_Target_5XX_Count`
//! (absent in a minute without errors, which counts as zero) and `TargetResponseTime` (seconds, from
//! which CloudWatch computes percentiles). The window is whole minutes and ends on a minute boundary,
//! so both revisions are read over the same complete minutes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Measurement, Sample};
use crate::Error;
use crate::aws::{CloudWatch, MetricQuery};

const NAMESPACE: &str = "AWS/ApplicationELB";

/// What is measured of each revision's target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlbMeasure {
    /// Share of requests the targets answered with 5xx (0.05 is 5%).
    ErrorRatio,
    /// The 99th percentile of `TargetResponseTime`, in seconds.
    LatencyP99,
}

/// The load balancer and the target groups of the two revisions, as CloudWatch names them: the ARN's
/// resource part (`app/NAME/ID`, `targetgroup/NAME/ID`). See [`dimension`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbTraffic {
    /// `app/NAME/ID`.
    pub load_balancer: String,
    /// The target group the new revision's tasks are registered in.
    pub new_target_group: String,
    /// The target group of the revision serving before the rollout.
    pub old_target_group: String,
}

/// CloudWatch's dimension value for a load balancer or target group ARN: the part after
/// `loadbalancer/` (`app/NAME/ID`), or from `targetgroup/` on (`targetgroup/NAME/ID`).
pub fn dimension(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if let Some(lb) = resource.strip_prefix("loadbalancer/") {
        return Some(lb.to_owned());
    }
    resource.starts_with("targetgroup/").then(|| resource.to_owned())
}

/// `end` rounded down to a whole minute.
fn minute_floor(end: SystemTime) -> SystemTime {
    let seconds = end.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    UNIX_EPOCH + Duration::from_secs(seconds - seconds % 60)
}

/// Measures both revisions over the whole minutes of `window` (rounded up to at least one) that end at
/// the minute boundary before `end`. One GetMetricData call.
pub async fn measure(
    cloudwatch: &dyn CloudWatch,
    what: AlbMeasure,
    traffic: &AlbTraffic,
    window: Duration,
    end: SystemTime,
) -> Result<Measurement, Error> {
    let mut all = measure_all(cloudwatch, &[what], traffic, window, end).await?;
    Ok(all.remove(0))
}

/// [`measure`] for several measures at once, in their order: still one GetMetricData call, the request
/// counts read once for all of them.
pub async fn measure_all(
    cloudwatch: &dyn CloudWatch,
    whats: &[AlbMeasure],
    traffic: &AlbTraffic,
    window: Duration,
    end: SystemTime,
) -> Result<Vec<Measurement>, Error> {
    let minutes = window.as_secs().div_ceil(60).max(1);
    let window = Duration::from_secs(minutes * 60);
    let end = minute_floor(end);
    let start = end - window;
    let query = |target_group: &str, metric: &str, stat: &str| MetricQuery {
        namespace: NAMESPACE.to_owned(),
        metric_name: metric.to_owned(),
        dimensions: BTreeMap::from([
            ("LoadBalancer".to_owned(), traffic.load_balancer.clone()),
            ("TargetGroup".to_owned(), target_group.to_owned()),
        ]),
        stat: stat.to_owned(),
    };
    let metric = |what: AlbMeasure| match what {
        AlbMeasure::ErrorRatio => ("HTTPCode_Target_5XX_Count", "Sum"),
        AlbMeasure::LatencyP99 => ("TargetResponseTime", "p99"),
    };
    // Per target group (new, then old): the requests, then each measure's metric.
    let groups = [&traffic.new_target_group, &traffic.old_target_group];
    let per_group = 1 + whats.len();
    let queries: Vec<MetricQuery> = groups
        .into_iter()
        .flat_map(|tg| {
            std::iter::once(query(tg, "RequestCount", "Sum")).chain(whats.iter().map(|w| {
                let (name, stat) = metric(*w);
                query(tg, name, stat)
            }))
        })
        .collect();
    let values = cloudwatch.metric_data(&queries, start, end).await?;
    let at = |i: usize| values.get(i).copied().flatten();
    let sample = |what: AlbMeasure, group: usize, i: usize| {
        let requests = at(group * per_group).unwrap_or(0.0);
        let measured = at(group * per_group + 1 + i);
        let value = match what {
            // No 5xx datapoint in a minute with requests means no errors.
            AlbMeasure::ErrorRatio => (requests > 0.0).then(|| measured.unwrap_or(0.0) / requests),
            AlbMeasure::LatencyP99 => measured,
        };
        Sample { value, requests }
    };
    Ok(whats
        .iter()
        .enumerate()
        .map(|(i, w)| Measurement { new: sample(*w, 0, i), old: sample(*w, 1, i), window })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_the_resource_part_of_the_arns() {
        assert_eq!(
            dimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188")
                .as_deref(),
            Some("app/web/50dc6c495c0c9188")
        );
        assert_eq!(
            dimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/ecsop-a/73e2d6bc24d8a067")
                .as_deref(),
            Some("targetgroup/ecsop-a/73e2d6bc24d8a067")
        );
        assert_eq!(dimension("arn:aws:ecs:us-east-1:123456789012:service/c/s"), None);
        assert_eq!(dimension("not an arn"), None);
    }

    #[test]
    fn windows_end_on_a_minute() {
        let end = UNIX_EPOCH + Duration::from_secs(1_800_000_059);
        assert_eq!(minute_floor(end), UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    }
}
