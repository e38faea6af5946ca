//! What the commands print, as pure functions of the engine's results: the same text whether it goes
//! to a terminal or into a test's recorded output.

use std::fmt::Write;

use crate::engine::report::Report;
use crate::engine::rollout::short_revision;
use crate::engine::vocabulary::{Action, Phase};

/// The writes `diff` and `apply` count: the service record (`TagService`) is bookkeeping, not a change.
pub fn counted(actions: &[Action]) -> Vec<&Action> {
    actions.iter().filter(|a| !matches!(a, Action::TagService { .. })).collect()
}

/// `ecsop diff`'s text for one ApiDeployment: why it is stalled, if it is, then each write with its
/// field-level changes.
pub fn diff(name: &str, actions: &[&Action], report: &Report) -> String {
    let mut out = String::new();
    if report.phase == Phase::Stalled {
        let _ = writeln!(out, "{name}: Stalled ({}): {}", report.reason, report.message);
    }
    if actions.is_empty() {
        let _ = writeln!(out, "{name}: no changes");
    } else {
        let _ = writeln!(out, "{name}: {} change(s)", actions.len());
        for a in actions {
            let _ = writeln!(out, "  {} {}", a.verb(), a.subject());
            for c in a.changes() {
                let _ = writeln!(out, "      {}: {} -> {}", c.field, c.from, c.to);
            }
        }
    }
    out
}

/// `ecsop delete --dry-run`'s text for one ApiDeployment.
pub fn teardown(name: &str, actions: &[Action]) -> String {
    let mut out = format!("{name}: would {} action(s)\n", actions.len());
    for a in actions {
        let _ = writeln!(out, "  {} {}", a.verb(), a.subject());
    }
    out
}

/// One write as `apply` reports it while it happens: `+ ecs service books-api: desiredCount=2`.
pub fn progress(action: &Action) -> String {
    let changes = action.change_summary();
    let sep = if changes.is_empty() { "" } else { ": " };
    format!("{} {}{sep}{changes}", action.verb(), action.subject())
}

/// `apply`'s one-line outcome for one ApiDeployment.
pub fn summary_line(report: &Report, changed: usize) -> String {
    let revision = report.task_definition_arn.as_deref().map(short_revision).unwrap_or_else(|| "-".into());
    let what = if changed == 0 { "unchanged".to_string() } else { format!("{changed} change(s) applied") };
    format!("{what}; {:?} ({}): {} [revision {revision}]", report.phase, report.reason, report.message)
}

/// `ecsop status`'s text for one ApiDeployment.
pub fn status(r: &Report) -> String {
    let replicas =
        r.replicas.map(|(d, run, p)| format!("{run}/{d} running, {p} pending")).unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(out, "{}  {:?}  {}", r.name, r.phase, r.reason);
    let _ = writeln!(out, "  message:         {}", r.message);
    let _ = writeln!(
        out,
        "  image:           {}{}",
        r.image_ref,
        r.image.as_ref().map(|i| format!(" ({})", i.digest)).unwrap_or_default()
    );
    let _ = writeln!(out, "  revision:        {}", r.task_definition_arn.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  service:         {}", r.service_arn.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  replicas:        {replicas}");
    let _ = writeln!(out, "  target group:    {}", r.target_group_arn.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  listener rule:   {}", r.listener_rule_arn.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  repository:      {}", r.repository_uri.as_deref().unwrap_or("-"));
    if let Some(ro) = &r.rollout {
        let _ = writeln!(
            out,
            "  rollout:         {} {} (started {})",
            ro.id,
            ro.state,
            ro.started.as_deref().unwrap_or("?")
        );
        if let (Some(strategy), Some(phase)) = (&ro.strategy, &ro.phase) {
            let split = ro
                .traffic
                .as_ref()
                .map(|t| format!(", traffic new {}% / old {}%", t.new_percent, t.old_percent))
                .unwrap_or_default();
            let _ = writeln!(out, "  strategy:        {strategy}: {phase}{split}");
        }
        for check in &ro.analysis {
            let _ = writeln!(out, "  analysis:        {}", check.message);
        }
    }
    let _ = writeln!(out, "  last good:       {}", r.last_good_revision.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  pending changes: {}", r.pending_changes);
    for e in r.events.iter().take(3) {
        let _ = writeln!(out, "  event:           {e}");
    }
    out
}
