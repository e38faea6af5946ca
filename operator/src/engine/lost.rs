//! Creates whose answer was lost. AWS may carry a write out and its answer never arrive (a timeout, a
//! 5xx from a front end, a reset connection). For the writes AWS does not make idempotent
//! ([`crate::aws::calls::NOT_IDEMPOTENT`]) the call layer does not repeat them; the actor runs them
//! through [`create_once`], which first looks for what the write would have made (by the marks every
//! owned resource carries: a name, a tag, a description, a priority) and sends it again only when
//! nothing is there.

use std::future::Future;
use std::time::Duration;

use crate::aws::{AwsError, Clients, ErrorKind, Integration, Rule, RuleAction};

/// How many times a create is sent in all when its answers are lost.
const ATTEMPTS: u32 = 4;

/// Run `create`; after an ambiguous failure look for its result with `find` before sending it again.
/// A conflict after a lost answer is usually the first attempt's own doing (a rule at its priority,
/// a route with its key), so it is looked for too.
pub async fn create_once<T, C, CF, F, FF>(create: C, find: F) -> Result<T, AwsError>
where
    C: Fn() -> CF,
    CF: Future<Output = Result<T, AwsError>>,
    F: Fn() -> FF,
    FF: Future<Output = Result<Option<T>, AwsError>>,
{
    let mut lost = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match create().await {
            Ok(made) => return Ok(made),
            Err(e) => e,
        };
        let ambiguous = error.kind == ErrorKind::Transient || (lost && error.kind == ErrorKind::Conflict);
        if !ambiguous {
            return Err(error);
        }
        lost = true;
        tracing::info!(service = error.service, operation = error.operation, %error, "answer lost; looking for its result");
        // What AWS made may take a moment to show in reads.
        tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(attempt - 1)).await;
        if let Some(found) = find().await? {
            return Ok(found);
        }
        if attempt >= ATTEMPTS {
            return Err(error);
        }
    }
}

/// The rule at `priority` on `listener` doing `action` (forwarding to its target group, or redirecting).
pub async fn rule(
    clients: &Clients,
    listener: &str,
    priority: i32,
    action: &RuleAction,
) -> Result<Option<Rule>, AwsError> {
    let rules = clients.elbv2.rules(listener).await?;
    Ok(rules.into_iter().find(|r| {
        r.priority == Some(priority)
            && match action {
                RuleAction::Forward(tg) => r.target_groups.iter().any(|t| t == tg),
                RuleAction::Weighted(groups) => groups.iter().all(|(tg, _)| r.target_groups.contains(tg)),
                RuleAction::Redirect(_) => r.redirect.is_some(),
            }
    }))
}

/// The integration of `api` with `description` (ecsop's ownership marker).
pub async fn integration(clients: &Clients, api: &str, description: &str) -> Result<Option<Integration>, AwsError> {
    let found = clients.apigateway.integrations(api).await?;
    Ok(found.into_iter().find(|i| i.description.as_deref() == Some(description)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn lost() -> AwsError {
        AwsError::new("ecs", "RegisterTaskDefinition", ErrorKind::Transient, "HTTP 500")
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_create_that_took_effect_is_found_not_repeated() {
        let sent = AtomicU32::new(0);
        let made = AtomicU32::new(0);
        let result = create_once(
            || async {
                sent.fetch_add(1, Ordering::SeqCst);
                made.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(lost())
            },
            || async { Ok((made.load(Ordering::SeqCst) > 0).then_some(7)) },
        )
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(sent.load(Ordering::SeqCst), 1, "found, so not sent again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_that_never_took_effect_is_sent_again_then_gives_up() {
        let sent = AtomicU32::new(0);
        let result = create_once(
            || async {
                sent.fetch_add(1, Ordering::SeqCst);
                if sent.load(Ordering::SeqCst) < 3 { Err(lost()) } else { Ok(3) }
            },
            || async { Ok(None) },
        )
        .await;
        assert_eq!(result, Ok(3));

        let sent = AtomicU32::new(0);
        let result: Result<u32, _> = create_once(
            || async {
                sent.fetch_add(1, Ordering::SeqCst);
                Err(lost())
            },
            || async { Ok(None) },
        )
        .await;
        assert_eq!(result.expect_err("gives up").kind, ErrorKind::Transient);
        assert_eq!(sent.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_conflict_after_a_lost_answer_is_the_first_attempts_doing() {
        let sent = AtomicU32::new(0);
        let result = create_once(
            || async {
                match sent.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(lost()),
                    _ => Err(AwsError::new("elbv2", "CreateRule", ErrorKind::Conflict, "PriorityInUse")),
                }
            },
            // Reads lag: the rule shows only from the second look on.
            || async { Ok((sent.load(Ordering::SeqCst) >= 2).then_some("rule")) },
        )
        .await;
        assert_eq!(result, Ok("rule"));

        // A conflict without a lost answer before it is someone else's: reported as it is.
        let result: Result<u32, _> = create_once(
            || async { Err(AwsError::new("elbv2", "CreateRule", ErrorKind::Conflict, "PriorityInUse")) },
            || async { Ok(Some(1)) },
        )
        .await;
        assert_eq!(result.expect_err("conflict").kind, ErrorKind::Conflict);
    }
}
