//! The API Gateway wiring ecsop owns on an existing HTTP API (`spec.apiGateway`): one private
//! integration over the VPC link to the service's Cloud Map SRV records, the routes the spec lists, and
//! an optional JWT authorizer.
//!
//! None of these take tags, so ownership is recorded in what they do have: the integration's
//! description ([`super::desired::gateway_marker`]), the authorizer's name
//! ([`super::desired::authorizer_name`]), and for routes, their target (our integration).

use super::desired::{GatewayState, authorizer_name, gateway_marker};
use super::names::Names;
use super::plan::{Action, Change, Created, Ref};
use crate::aws::{Authorizer, Integration, IntegrationConfig, Route};

/// What an HTTP API holds, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayObserved {
    /// The HTTP API.
    pub api_id: String,
    /// Its integrations.
    pub integrations: Vec<Integration>,
    /// Its routes.
    pub routes: Vec<Route>,
    /// Its authorizers.
    pub authorizers: Vec<Authorizer>,
}

impl GatewayObserved {
    /// Our integration.
    pub fn integration(&self, names: &Names) -> Option<&Integration> {
        let marker = gateway_marker(names);
        self.integrations.iter().find(|i| i.description.as_deref() == Some(marker.as_str()))
    }

    /// Our authorizer.
    pub fn authorizer(&self, names: &Names) -> Option<&Authorizer> {
        let name = authorizer_name(names);
        self.authorizers.iter().find(|a| a.config.name == name)
    }

    /// Our routes: those targeting our integration.
    pub fn routes(&self, names: &Names) -> Vec<&Route> {
        let Some(i) = self.integration(names) else {
            return Vec::new();
        };
        let target = format!("integrations/{}", i.id);
        self.routes.iter().filter(|r| r.target.as_deref() == Some(target.as_str())).collect()
    }
}

/// A route key the spec wants that someone else's route holds.
pub fn conflict(names: &Names, wanted: &GatewayState, observed: Option<&GatewayObserved>) -> Option<String> {
    let observed = observed?;
    let ours: Vec<&str> = observed.routes(names).iter().map(|r| r.id.as_str()).collect();
    wanted.routes.iter().find_map(|(key, _)| {
        observed.routes.iter().find(|r| &r.key == key && !ours.contains(&r.id.as_str())).map(|r| {
            format!(
                "route {key} on HTTP API {} exists and targets {} not ecsop's integration for {}",
                wanted.api_id,
                r.target.as_deref().unwrap_or("nothing"),
                names.owner()
            )
        })
    })
}

/// The writes that bring the HTTP API to `wanted`; nothing when it was not read (fast path).
/// `service` is the Cloud Map service the integration sends to.
pub fn plan(
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
pub fn teardown(names: &Names, observed: &GatewayObserved, actions: &mut Vec<Action>) {
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
