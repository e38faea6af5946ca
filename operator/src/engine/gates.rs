//! The gates a plan passes before it may touch the service: nobody else owns one of our names, the
//! image resolved to a digest, and (with `image.scanGate`) its ECR scan finished under the bar. A gate
//! that holds the plan back says why, as the assessment the status reports.

use super::describe::short_digest;
use super::observed::ImageState;
use super::resources::{KINDS, Scope};
use super::target::{ImageSource, PinnedImage, image_source_ref};
use super::vocabulary::{Action, Assessment, Phase};
use crate::api::Severity;
use crate::aws::ImageScan;

/// A Stalled assessment.
pub fn stalled(reason: &str, message: String) -> Assessment {
    Assessment { phase: Phase::Stalled, reason: reason.to_string(), message, rollout: None }
}

/// Which of our names is held by something we do not own, checked kind by kind in dependency order:
/// ecsop never writes next to (or takes over) a resource it did not create.
pub fn ownership(scope: &Scope) -> Option<Assessment> {
    KINDS.iter().find_map(|kind| kind.conflict(scope)).map(|c| stalled("ResourceConflict", c))
}

/// The image, pinned; or why the plan stops before the service. `actions` holds what was planned
/// before the gate (the repository): a scan the gate needs is started after them.
pub fn image(scope: &Scope, actions: &mut Vec<Action>) -> Result<PinnedImage, Box<Assessment>> {
    let spec = scope.spec();
    let image = match &scope.observed.image {
        Some(ImageState::Pinned(p)) => p.clone(),
        Some(ImageState::NotFound(m)) => {
            // The observation predates this plan: say that the repository is being created, and what to push.
            let m = if actions.iter().any(|a| matches!(a, Action::CreateRepository { .. })) {
                format!("{m} yet: apply creates it; push {} to it", image_source_ref(spec))
            } else {
                m.clone()
            };
            return Err(Box::new(stalled("ImageNotFound", m)));
        }
        Some(ImageState::Unresolvable(m)) => return Err(Box::new(stalled("InvalidSpec", m.clone()))),
        None => return Err(Box::new(stalled("ImageNotFound", "the image was not resolved".into()))),
    };
    scan(scope, &image, actions)?;
    Ok(image)
}

/// The scan gate: an image the service does not run yet must have a finished scan under the bar.
fn scan(scope: &Scope, image: &PinnedImage, actions: &mut Vec<Action>) -> Result<(), Box<Assessment>> {
    let spec = scope.spec();
    let (Some(gate), Some(scan)) = (&spec.image.scan_gate, &scope.observed.scan) else {
        return Ok(());
    };
    let short = short_digest(&image.digest).to_string();
    let waiting = |m: String| Assessment {
        phase: Phase::Progressing,
        reason: "ImageScanInProgress".into(),
        message: m,
        rollout: None,
    };
    match scan {
        ImageScan::NotScanned => {
            if let ImageSource::Ecr { registry_id, repository } = ImageSource::parse(&spec.image.repository) {
                actions.push(Action::StartImageScan { registry_id, repository, digest: image.digest.clone() });
            }
            Err(Box::new(waiting(format!(
                "image {short} was never scanned: started its ECR scan, the rollout waits for it"
            ))))
        }
        ImageScan::InProgress => {
            Err(Box::new(waiting(format!("waiting for the ECR scan of image {short} before rolling it out"))))
        }
        ImageScan::Failed(reason) => Err(Box::new(stalled(
            "ImageScanFailed",
            format!("the ECR scan of image {short} did not complete ({reason}); the service keeps its current image"),
        ))),
        ImageScan::Complete(counts) => {
            let bar = gate.fail_on_severity;
            let blocking: Vec<(Severity, i32)> = counts
                .iter()
                .filter_map(|(name, n)| Severity::parse(name).map(|s| (s, *n)))
                .filter(|(s, n)| *s <= bar && *n > 0)
                .collect();
            let total: i32 = blocking.iter().map(|(_, n)| n).sum();
            if total == 0 {
                return Ok(());
            }
            let detail = blocking.iter().map(|(s, n)| format!("{} {n}", s.as_str())).collect::<Vec<_>>().join(", ");
            Err(Box::new(stalled(
                "ImageRejected",
                format!(
                    "image {short} has {total} finding{} at {} or above ({detail}); the rollout is refused and the \
                     service keeps its current image",
                    if total == 1 { "" } else { "s" },
                    bar.as_str()
                ),
            )))
        }
    }
}
