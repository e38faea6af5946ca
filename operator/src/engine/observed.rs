//! What AWS holds for one ApiDeployment, as read by [`super::observe`]: plain data the planner and
//! every resource module read, none of them writing it.

use std::collections::BTreeMap;

use super::names::{Names, authorizer_name, gateway_marker, integration_owner, legacy_authorizer_name};
use super::target::PinnedImage;
use crate::aws::{
    AlarmInfo, Authorizer, DiscoveryService, ImageScan, Integration, Repository, Route, Rule, ScalableTarget,
    ScalingPolicy, Service, ServiceDeployment, Stage, Tags, TargetGroup, TaskDefinitionInfo,
};

/// How the image resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageState {
    /// Pinned.
    Pinned(PinnedImage),
    /// The tag or digest does not exist (or the repository does not).
    NotFound(String),
    /// The reference cannot be pinned (a tag in a registry other than ECR).
    Unresolvable(String),
}

/// What AWS holds for one ApiDeployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Whether hidden state was read too (see [`super::observe`]).
    pub deep: bool,
    /// The ECS service (None when missing or INACTIVE).
    pub service: Option<Service>,
    /// The image.
    pub image: Option<ImageState>,
    /// The repository (owned or the source of the image), when read.
    pub repository: Option<Repository>,
    /// Its tags, when read.
    pub repository_tags: Option<Tags>,
    /// Its lifecycle policy, when read (`Some(None)`: none set).
    pub lifecycle_policy: Option<Option<String>>,
    /// Our revision matching the desired task definition, when one exists and was looked for.
    pub matching_revision: Option<TaskDefinitionInfo>,
    /// Our ACTIVE revisions, newest first, when listed.
    pub revisions: Option<Vec<TaskDefinitionInfo>>,
    /// The target group with our name.
    pub target_group: Option<TargetGroup>,
    /// Its tags, when read.
    pub target_group_tags: Option<Tags>,
    /// Its attributes, when read.
    pub target_group_attributes: Option<BTreeMap<String, String>>,
    /// The second target group with our name (read when the strategy shifts traffic, when the service
    /// is bound to it, and for deletion).
    pub alternate_target_group: Option<TargetGroup>,
    /// Its tags, when read.
    pub alternate_target_group_tags: Option<Tags>,
    /// Its attributes, when read.
    pub alternate_target_group_attributes: Option<BTreeMap<String, String>>,
    /// Every rule of the listener, when there is a load balancer.
    pub listener_rules: Option<Vec<Rule>>,
    /// Rules of the listener that could take requests our rule's hosts and paths match, with their tags:
    /// read (deep) when our rule is to be created or to change where it matches.
    pub overlapping_rules: Vec<(Rule, Tags)>,
    /// Our rules on a listener the spec no longer names (moved or removed), to delete.
    pub stale_rules: Vec<Rule>,
    /// The Cloud Map service with our name.
    pub discovery: Option<DiscoveryService>,
    /// Its tags, when read.
    pub discovery_tags: Option<Tags>,
    /// The Cloud Map namespace the service records (`ecsop.io/discovery-namespace`) when the spec no
    /// longer names it (dropped or moved).
    pub stale_discovery_namespace: Option<String>,
    /// The Cloud Map service with our name in that namespace: deleted once no task registers in it.
    pub stale_discovery: Option<DiscoveryService>,
    /// Its tags, when read.
    pub stale_discovery_tags: Option<Tags>,
    /// The scalable target, when read.
    pub scalable_target: Option<ScalableTarget>,
    /// Scaling policies, when read.
    pub scaling_policies: Option<Vec<ScalingPolicy>>,
    /// Every rule of the HTTPS-redirect listener, when the spec has one.
    pub redirect_listener_rules: Option<Vec<Rule>>,
    /// The tags of the rule at our priority on that listener, when read (deep).
    pub redirect_rule_tags: Option<Tags>,
    /// The scan of the pinned image, when the scan gate needed it (an image the service does not run).
    pub scan: Option<ImageScan>,
    /// The digest the promotion tag is on (`Some(None)`: on no image), when read.
    pub promoted: Option<Option<String>>,
    /// The alarms that can carry our names, with their tags, when read.
    pub alarms: Option<Vec<(AlarmInfo, Tags)>>,
    /// ECS's record of the service's recent deployments, when read: only when the service does not run
    /// the desired revision and DescribeServices no longer says what became of its deployment.
    pub service_deployments: Option<Vec<ServiceDeployment>>,
    /// The HTTP API the spec names, when read.
    pub gateway: Option<GatewayObserved>,
    /// An HTTP API we wired that the spec no longer names (recorded on the service), to clean up.
    pub stale_gateway: Option<GatewayObserved>,
}

impl Observed {
    /// Our listener rule: the one forwarding to one of our target groups.
    pub fn rule(&self) -> Option<&Rule> {
        let ours: Vec<&str> =
            self.target_group.iter().chain(&self.alternate_target_group).map(|t| t.arn.as_str()).collect();
        self.listener_rules
            .as_ref()?
            .iter()
            .find(|r| r.header.is_none() && r.target_groups.iter().any(|arn| ours.contains(&arn.as_str())))
    }

    /// Our test-traffic rule: one forwarding to our target groups with an http-header condition.
    pub fn test_rule(&self) -> Option<&Rule> {
        let ours: Vec<&str> =
            self.target_group.iter().chain(&self.alternate_target_group).map(|t| t.arn.as_str()).collect();
        self.listener_rules
            .as_ref()?
            .iter()
            .find(|r| r.header.is_some() && r.target_groups.iter().any(|arn| ours.contains(&arn.as_str())))
    }

    /// The pinned image, when it resolved.
    pub fn pinned(&self) -> Option<&PinnedImage> {
        match &self.image {
            Some(ImageState::Pinned(p)) => Some(p),
            _ => None,
        }
    }
}

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
    /// The stage the spec names, when read (`None`: it does not exist).
    pub stage: Option<Stage>,
}

impl GatewayObserved {
    /// Our integration.
    pub fn integration(&self, names: &Names) -> Option<&Integration> {
        let marker = gateway_marker(names);
        self.integrations.iter().find(|i| i.description.as_deref() == Some(marker.as_str()))
    }

    /// Our authorizer: the one with our name, or one with the name earlier versions gave it that our
    /// own routes use (two owners could share that name; the routes tell whose it is).
    pub fn authorizer(&self, names: &Names) -> Option<&Authorizer> {
        let name = authorizer_name(names);
        let legacy = legacy_authorizer_name(names);
        let used = |id: &str| self.routes(names).iter().any(|r| r.authorizer_id.as_deref() == Some(id));
        self.authorizers
            .iter()
            .find(|a| a.config.name == name)
            .or_else(|| self.authorizers.iter().find(|a| a.config.name == legacy && used(&a.id)))
    }

    /// Routes of other ApiDeployments: those targeting an integration ecsop made for another owner, with
    /// that owner.
    pub fn routes_of_others<'a>(&'a self, names: &Names) -> Vec<(&'a Route, &'a str)> {
        let me = names.owner();
        self.integrations
            .iter()
            .filter_map(|i| Some((i, integration_owner(i.description.as_deref()?)?)))
            .filter(|(_, owner)| *owner != me)
            .flat_map(|(i, owner)| {
                let target = format!("integrations/{}", i.id);
                self.routes
                    .iter()
                    .filter(move |r| r.target.as_deref() == Some(target.as_str()))
                    .map(move |r| (r, owner))
            })
            .collect()
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
