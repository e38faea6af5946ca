//! The API Gateway wiring ecsop owns on an existing HTTP API (`spec.apiGateway`): one private
//! integration over the VPC link to the service's Cloud Map SRV records, the routes the spec lists, and
//! an optional JWT authorizer.
//!
//! None of these take tags, so ownership is recorded in what they do have: the integration's
//! description ([`crate::engine::names::gateway_marker`]), the authorizer's name
//! ([`crate::engine::names::authorizer_name`]), and for routes, their target (our integration). The
//! service records the HTTP API (`ecsop.io/api`), so pieces on an API the spec left are removed.

use super::kind::{Kind, Planned, Scope};
use crate::aws::{AuthorizerConfig, AwsError, Clients, IntegrationConfig};
use crate::engine::model::{Desired, GatewayState, content_hash, sorted};
use crate::engine::names::{Names, authorizer_name, gateway_marker, service_tags, stage_of_tag, stage_tag};
use crate::engine::observed::GatewayObserved;
use crate::engine::overlap;
use crate::engine::target::Target;
use crate::engine::vocabulary::{Action, Change, Created, Ref};

/// The API Gateway kind.
pub struct Gateway;

/// The API Gateway pieces `target` asks for.
pub fn desired(target: &Target) -> Option<GatewayState> {
    let names = &target.names;
    target.spec.api_gateway.as_ref().map(|g| {
        let mut routes: Vec<(String, bool)> = g.routes.iter().map(|r| (r.key.clone(), r.public)).collect();
        routes.sort();
        GatewayState {
            stage: g.stage.clone(),
            api_id: g.api_id.clone(),
            vpc_link_id: g.vpc_link_id.clone(),
            marker: gateway_marker(names),
            routes,
            authorizer: g.authorizer.as_ref().map(|a| AuthorizerConfig {
                name: authorizer_name(names),
                issuer: a.issuer.clone(),
                audience: sorted(&a.audience),
                identity_source: a.identity_source.clone(),
            }),
        }
    })
}

impl Kind for Gateway {
    fn conflict(&self, scope: &Scope) -> Option<String> {
        let wanted = desired(scope.target)?;
        let observed = scope.observed.gateway.as_ref();
        if let Some(g) = observed.filter(|g| g.stage.is_none()) {
            return Some(format!(
                "stage {} does not exist on HTTP API {}: create it, or name an existing stage in apiGateway.stage",
                wanted.stage, g.api_id
            ));
        }
        conflict(scope.names(), &wanted, observed)
    }

    // The integration to the Cloud Map service, the authorizer, the routes. An HTTP API the spec left
    // loses our pieces.
    fn plan(&self, scope: &Scope, desired: &Desired, planned: &mut Planned) {
        let observed = scope.observed;
        let before = planned.actions.len();
        if let (Some(g), Some(registry)) = (&desired.gateway, &planned.registry) {
            plan(scope.names(), g, observed.gateway.as_ref(), registry, &mut planned.actions);
        }
        // Changes reach traffic only once deployed, unless the stage deploys by itself. What was last
        // deployed is recorded on the service, so a deployment cut short is made again.
        if let (Some(g), Some(Some(stage))) = (&desired.gateway, observed.gateway.as_ref().map(|o| &o.stage))
            && !stage.auto_deploy
        {
            let deployed = content_hash(g);
            let recorded = observed.service.as_ref().and_then(|s| s.tags.get(service_tags::API_DEPLOYED));
            let changed = planned.actions.len() > before;
            if changed || recorded != Some(&deployed) || stage.deployment_id.is_none() {
                planned.actions.push(Action::DeployApi {
                    api_id: g.api_id.clone(),
                    stage: g.stage.clone(),
                    description: format!("deployed by ecsop for {}", scope.names().owner()),
                });
            }
            planned.record.insert(service_tags::API_DEPLOYED.into(), deployed);
            planned.record.insert(service_tags::API_STAGE.into(), stage_tag(&g.stage));
        }
        if let Some(stale) = &observed.stale_gateway {
            teardown(scope.names(), stale, &mut planned.actions);
            redeploy(scope, stale, &mut planned.actions);
        }
        // What the service records of a gateway it no longer deploys to by hand.
        let recorded = |key: &str| observed.service.as_ref().is_some_and(|s| s.tags.contains_key(key));
        let mut forget = vec![];
        match &desired.gateway {
            Some(g) => {
                planned.record.insert(service_tags::API.into(), g.api_id.clone());
                let stage = observed.gateway.as_ref().and_then(|o| o.stage.as_ref());
                if stage.is_some_and(|s| s.auto_deploy) {
                    forget.extend([service_tags::API_DEPLOYED, service_tags::API_STAGE]);
                }
            }
            None => forget.extend([service_tags::API, service_tags::API_DEPLOYED, service_tags::API_STAGE]),
        }
        planned.forget.extend(forget.into_iter().filter(|k| recorded(k)).map(str::to_string));
    }

    fn teardown(&self, scope: &Scope, actions: &mut Vec<Action>) {
        for g in [&scope.observed.gateway, &scope.observed.stale_gateway].into_iter().flatten() {
            teardown(scope.names(), g, actions);
            redeploy(scope, g, actions);
        }
    }
}

/// Routes removed leave traffic only once the stage they were deployed to is deployed again. The
/// service records that stage while it may serve pieces of ours, and the record goes (or the service
/// does) only after this deployment: a run cut short in between deploys again.
fn redeploy(scope: &Scope, g: &GatewayObserved, actions: &mut Vec<Action>) {
    let recorded = scope.observed.service.as_ref().and_then(|s| s.tags.get(service_tags::API_STAGE));
    if let (Some(name), Some(stage)) = (recorded, &g.stage)
        && stage.name == stage_of_tag(name)
        && !stage.auto_deploy
    {
        actions.push(Action::DeployApi {
            api_id: g.api_id.clone(),
            stage: stage.name.clone(),
            description: format!("routes of {} removed by ecsop", scope.names().owner()),
        });
    }
}

/// Everything of an HTTP API ecsop may own, and the `stage` the spec names, read concurrently.
pub async fn read(clients: &Clients, api_id: &str, stage: Option<&str>) -> Result<GatewayObserved, AwsError> {
    let gw = &clients.apigateway;
    let (integrations, routes, authorizers, found) =
        futures::join!(gw.integrations(api_id), gw.routes(api_id), gw.authorizers(api_id), async {
            match stage {
                Some(name) => gw.stage(api_id, name).await,
                None => Ok(None),
            }
        });
    Ok(GatewayObserved {
        api_id: api_id.to_string(),
        integrations: integrations?,
        routes: routes?,
        authorizers: authorizers?,
        stage: found?,
    })
}

/// A route key the spec wants that someone else's route holds.
fn conflict(names: &Names, wanted: &GatewayState, observed: Option<&GatewayObserved>) -> Option<String> {
    let observed = observed?;
    let ours: Vec<&str> = observed.routes(names).iter().map(|r| r.id.as_str()).collect();
    let taken = wanted.routes.iter().find_map(|(key, _)| {
        observed.routes.iter().find(|r| &r.key == key && !ours.contains(&r.id.as_str())).map(|r| {
            format!(
                "route {key} on HTTP API {} exists and targets {} not ecsop's integration for {}",
                wanted.api_id,
                r.target.as_deref().unwrap_or("nothing"),
                names.owner()
            )
        })
    });
    // Another ApiDeployment's route that could take the same requests: API Gateway would send them to
    // whichever is more specific, so a new claim could take traffic (or skip an authorizer) of an
    // existing one. The later claim is refused, whatever the keys.
    let others = observed.routes_of_others(names);
    taken.or_else(|| {
        wanted.routes.iter().filter(|(key, _)| !observed.routes(names).iter().any(|r| &r.key == key)).find_map(
            |(key, _)| {
                others.iter().find(|(r, _)| overlap::routes_overlap(key, &r.key)).map(|(r, owner)| {
                    format!(
                        "route {key} overlaps route {} of ApiDeployment {owner} on HTTP API {}; choose routes that \
                     cannot match the same requests",
                        r.key, wanted.api_id
                    )
                })
            },
        )
    })
}

/// The writes that bring the HTTP API to `wanted`; nothing when it was not read (fast path).
/// `service` is the Cloud Map service the integration sends to.
fn plan(
    names: &Names,
    wanted: &GatewayState,
    observed: Option<&GatewayObserved>,
    service: &Ref,
    actions: &mut Vec<Action>,
) {
    let Some(observed) = observed else {
        return;
    };
    let api_id = wanted.api_id.clone();
    let config = |service_arn: String| IntegrationConfig {
        vpc_link_id: wanted.vpc_link_id.clone(),
        service_arn,
        description: wanted.marker.clone(),
    };

    // The integration first: routes target it.
    let integration = match observed.integration(names) {
        None => {
            actions.push(Action::CreateIntegration {
                api_id: api_id.clone(),
                config: config(service.to_string()),
                service: service.clone(),
            });
            Ref::Created(Created::Integration)
        }
        Some(current) => {
            let mut changes = Vec::new();
            if current.connection_id.as_deref() != Some(wanted.vpc_link_id.as_str()) {
                changes.push(Change {
                    field: "vpcLinkId".into(),
                    from: current.connection_id.clone().unwrap_or("-".into()),
                    to: wanted.vpc_link_id.clone(),
                });
            }
            let service_differs = match service {
                Ref::Arn(arn) => current.uri.as_deref() != Some(arn.as_str()),
                Ref::Created(_) => true,
            };
            if service_differs {
                changes.push(Change {
                    field: "cloudMapService".into(),
                    from: current.uri.clone().unwrap_or("-".into()),
                    to: service.to_string(),
                });
            }
            if current.integration_type != "HTTP_PROXY" || current.method.as_deref() != Some("ANY") {
                changes.push(Change {
                    field: "type".into(),
                    from: format!("{} {}", current.integration_type, current.method.as_deref().unwrap_or("-")),
                    to: "HTTP_PROXY ANY".into(),
                });
            }
            if !changes.is_empty() {
                actions.push(Action::UpdateIntegration {
                    api_id: api_id.clone(),
                    id: current.id.clone(),
                    config: config(service.to_string()),
                    service: service.clone(),
                    changes,
                });
            }
            Ref::Arn(current.id.clone())
        }
    };

    // The authorizer before the routes that use it.
    let current_authorizer = observed.authorizer(names);
    let authorizer = match (&wanted.authorizer, current_authorizer) {
        (None, _) => None,
        (Some(a), None) => {
            actions.push(Action::CreateAuthorizer { api_id: api_id.clone(), config: a.clone() });
            Some(Ref::Created(Created::Authorizer))
        }
        (Some(a), Some(current)) => {
            let mut changes = Vec::new();
            if current.config.issuer != a.issuer {
                changes.push(Change {
                    field: "issuer".into(),
                    from: current.config.issuer.clone(),
                    to: a.issuer.clone(),
                });
            }
            let mut audience = current.config.audience.clone();
            audience.sort();
            if audience != a.audience {
                changes.push(Change { field: "audience".into(), from: audience.join(","), to: a.audience.join(",") });
            }
            if current.config.name != a.name {
                changes.push(Change { field: "name".into(), from: current.config.name.clone(), to: a.name.clone() });
            }
            if current.config.identity_source != a.identity_source {
                changes.push(Change {
                    field: "identitySource".into(),
                    from: current.config.identity_source.clone(),
                    to: a.identity_source.clone(),
                });
            }
            if !changes.is_empty() {
                actions.push(Action::UpdateAuthorizer {
                    api_id: api_id.clone(),
                    id: current.id.clone(),
                    config: a.clone(),
                    changes,
                });
            }
            Some(Ref::Arn(current.id.clone()))
        }
    };

    // Routes: create, change, and remove the ones the spec dropped.
    let ours = observed.routes(names);
    for (key, public) in &wanted.routes {
        let route_authorizer = if *public { None } else { authorizer.clone() };
        match ours.iter().find(|r| &r.key == key) {
            None => actions.push(Action::CreateRoute {
                api_id: api_id.clone(),
                key: key.clone(),
                integration: integration.clone(),
                authorizer: route_authorizer,
            }),
            Some(current) => {
                let wanted_auth = match &route_authorizer {
                    None => None,
                    Some(Ref::Arn(id)) => Some(id.clone()),
                    Some(Ref::Created(_)) => Some(String::new()),
                };
                let mut changes = Vec::new();
                if current.authorizer_id != wanted_auth
                    || (wanted_auth.is_none() && current.authorization_type != "NONE")
                {
                    changes.push(Change {
                        field: "authorization".into(),
                        from: current.authorization_type.clone(),
                        to: if route_authorizer.is_some() { "JWT" } else { "NONE" }.into(),
                    });
                }
                if !changes.is_empty() {
                    actions.push(Action::UpdateRoute {
                        api_id: api_id.clone(),
                        id: current.id.clone(),
                        key: key.clone(),
                        integration: integration.clone(),
                        authorizer: route_authorizer,
                        changes,
                    });
                }
            }
        }
    }
    for r in &ours {
        if !wanted.routes.iter().any(|(key, _)| key == &r.key) {
            actions.push(Action::DeleteRoute { api_id: api_id.clone(), id: r.id.clone(), key: r.key.clone() });
        }
    }
    // An authorizer the spec dropped goes once no route uses it.
    if wanted.authorizer.is_none()
        && let Some(current) = current_authorizer
    {
        actions.push(Action::DeleteAuthorizer { api_id: api_id.clone(), id: current.id.clone() });
    }
}

/// Everything we own on an HTTP API, removed in order: routes, then the authorizer and the
/// integration they use.
fn teardown(names: &Names, observed: &GatewayObserved, actions: &mut Vec<Action>) {
    let api_id = observed.api_id.clone();
    for r in observed.routes(names) {
        actions.push(Action::DeleteRoute { api_id: api_id.clone(), id: r.id.clone(), key: r.key.clone() });
    }
    if let Some(a) = observed.authorizer(names) {
        actions.push(Action::DeleteAuthorizer { api_id: api_id.clone(), id: a.id.clone() });
    }
    if let Some(i) = observed.integration(names) {
        actions.push(Action::DeleteIntegration { api_id, id: i.id.clone() });
    }
}
