//! The Cloud Map service ecsop owns when the spec has `service.serviceDiscovery`: named after the
//! ApiDeployment in the spec's namespace, with A or SRV records, bound to the ECS service. The service
//! records the namespace (`ecsop.io/discovery-namespace`): a Cloud Map service the spec left (dropped, or
//! moved to another namespace) is deleted once the service's rollout away from it finished and no task
//! is registered in it any more.

use super::kind::{Kind, Planned, Scope, ownership_keys};
use crate::aws::{AwsError, Clients, DiscoveryService, Service, Tags};
use crate::engine::model::{Desired, DiscoveryState};
use crate::engine::names::{Names, owned_tags, service_tags};
use crate::engine::target::Target;
use crate::engine::vocabulary::{Action, Change, Created, Ref, Resource};

/// The Cloud Map kind.
pub struct Discovery;

/// The Cloud Map service `target` asks for, if any.
pub fn desired(target: &Target) -> Option<DiscoveryState> {
    target.spec.service.service_discovery.as_ref().map(|sd| DiscoveryState {
        namespace_id: sd.namespace_id.clone(),
        name: target.names.service().to_string(),
        record_type: sd.dns_record_type,
        ttl_seconds: i64::from(sd.ttl_seconds),
    })
}

/// The Cloud Map service with our name in `namespace`, with its tags.
pub async fn read(
    clients: &Clients,
    namespace: &str,
    names: &Names,
) -> Result<(Option<DiscoveryService>, Option<Tags>), AwsError> {
    let found = clients.cloudmap.find_service(namespace, names.service()).await?;
    let tags = match &found {
        Some(d) => Some(clients.cloudmap.tags(&d.arn).await?),
        None => None,
    };
    Ok((found, tags))
}

/// The owned Cloud Map services: the spec's, and the one it left.
fn ours<'a>(scope: &Scope<'a>) -> impl Iterator<Item = &'a DiscoveryService> {
    let o = scope.observed;
    let current = o.discovery.as_ref().filter(|_| scope.owns(o.discovery_tags.as_ref()));
    let stale = o.stale_discovery.as_ref().filter(|_| scope.owns(o.stale_discovery_tags.as_ref()));
    [current, stale].into_iter().flatten()
}

impl Kind for Discovery {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let observed = scope.observed;
        match (&observed.discovery, &observed.discovery_tags) {
            (Some(d), Some(_)) if !scope.owns(observed.discovery_tags.as_ref()) => {
                Some(scope.not_owned(&format!("Cloud Map service {}", d.name)))
            }
            _ => None,
        }
    }

    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let observed = scope.observed;
        // A Cloud Map service the spec left: the service update stops registering in it; once that
        // rollout has finished, no task is registered any more and it can go. Until then it is kept,
        // and so is the record of its namespace.
        let mut stale_kept = false;
        if observed.stale_discovery_namespace.is_some() {
            let stale =
                observed.stale_discovery.as_ref().filter(|_| scope.owns(observed.stale_discovery_tags.as_ref()));
            match stale {
                Some(d) if observed.service.as_ref().is_some_and(drained_of_registries) => {
                    planned.actions.push(Action::DeleteDiscoveryService { id: d.id.clone() });
                    planned.forget.push(service_tags::DISCOVERY_NAMESPACE.to_string());
                }
                Some(_) => stale_kept = true,
                None => planned.forget.push(service_tags::DISCOVERY_NAMESPACE.to_string()),
            }
        }
        let Some(d) = &desired.discovery else {
            return;
        };
        if !stale_kept {
            planned.record.insert(service_tags::DISCOVERY_NAMESPACE.into(), d.namespace_id.clone());
        }
        planned.registry = Some(plan_discovery(scope, d, &mut planned.actions));
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        for d in ours(scope) {
            actions.push(Action::DeleteDiscoveryService { id: d.id.clone() });
        }
    }

    fn release(&self, scope: &Scope, actions: &mut Vec<Action>) {
        for d in ours(scope) {
            actions.push(Action::Untag { resource: Resource::Discovery, arn: d.arn.clone(), keys: ownership_keys() });
        }
    }
}

/// The service registers in no Cloud Map service and runs one finished deployment: the tasks of the
/// deployments that did register are gone, and ECS deregistered their instances with them.
fn drained_of_registries(service: &Service) -> bool {
    service.registries.is_empty()
        && matches!(service.deployments.as_slice(), [only] if only.rollout_state.as_deref() == Some("COMPLETED"))
}

fn plan_discovery(scope: &Scope, d: &DiscoveryState, actions: &mut Vec<Action>) -> Ref {
    let observed = scope.observed;
    // In the fast path Cloud Map is not read; the service's registry binding names it.
    if !observed.deep
        && let Some(binding) = observed.service.as_ref().and_then(|s| s.registries.first())
    {
        return Ref::Arn(binding.arn.clone());
    }
    match &observed.discovery {
        None => {
            actions.push(Action::CreateDiscoveryService { discovery: d.clone(), tags: owned_tags(scope.names(), &[]) });
            Ref::Created(Created::Discovery)
        }
        Some(current) => {
            if current.ttl_seconds != d.ttl_seconds {
                actions.push(Action::UpdateDiscoveryTtl {
                    id: current.id.clone(),
                    discovery: d.clone(),
                    changes: vec![Change::new("serviceDiscovery.ttlSeconds", current.ttl_seconds, d.ttl_seconds)],
                });
            }
            Ref::Arn(current.arn.clone())
        }
    }
}
