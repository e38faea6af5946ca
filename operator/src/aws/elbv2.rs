//! The ELBv2 adapter over `aws-sdk-elasticloadbalancingv2`.
//!
//! Reads that the engine makes once per ApiDeployment (target group by name, tags, listener rules) go
//! through [`Batcher`]s, so a fleet resync costs a handful of Describe calls rather than one per
//! resource.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2 as sdk;
use futures::FutureExt;
use sdk::types::{
    Action, ActionTypeEnum, HostHeaderConditionConfig, Matcher, PathPatternConditionConfig, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, RuleCondition, RulePriorityPair, Tag, TargetGroupAttribute,
    TargetTypeEnum,
};

use super::batch::Batcher;
use super::calls::{self, Calls};
use super::error::MissingOk;
use super::{
    AwsError, AwsResult, Elbv2, ErrorKind, HeaderMatch, Redirect, Rule, RuleAction, RuleConfig, Tags, TargetGroup,
    TargetGroupConfig, TargetGroupHealth,
};

const SERVICE: &str = "elbv2";
/// How long a batch waits for more keys.
const WINDOW: Duration = Duration::from_millis(5);
/// Names per DescribeTargetGroups (AWS takes more; a smaller batch keeps a failed call cheap).
const MAX_NAMES: usize = 20;
/// ARNs per DescribeTags: the AWS limit.
const MAX_TAG_ARNS: usize = 20;
/// Target groups per page when listing them all.
const LIST_PAGE_SIZE: i32 = 400;
/// DescribeRules page size: the largest AWS accepts, so a full listener is one call.
const RULES_PAGE: i32 = 400;

/// [`Elbv2`] through the AWS SDK.
pub struct SdkElbv2 {
    client: sdk::Client,
    calls: Calls,
    target_groups: Batcher<(), String, TargetGroup>,
    tags: Batcher<(), String, Tags>,
    rules: Batcher<String, (), Vec<Rule>>,
}

impl std::fmt::Debug for SdkElbv2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkElbv2").field("calls", &self.calls).finish_non_exhaustive()
    }
}

impl SdkElbv2 {
    /// An adapter using `config` (region, endpoint, credentials), with the SDK's own retries off:
    /// `calls` rate-limits, retries and counts every call.
    pub fn new(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = sdk::config::Builder::from(config).retry_config(calls::sdk_retry_config()).build();
        Self::with_client(sdk::Client::from_conf(conf), calls)
    }

    fn with_client(client: sdk::Client, calls: Calls) -> Self {
        let (c, k) = (client.clone(), calls.clone());
        let target_groups = Batcher::new(MAX_NAMES, WINDOW, move |(), names: Vec<String>| {
            let (client, calls) = (c.clone(), k.clone());
            async move { load_target_groups(&client, &calls, names).await }.boxed()
        });
        let (c, k) = (client.clone(), calls.clone());
        let tags = Batcher::new(MAX_TAG_ARNS, WINDOW, move |(), arns: Vec<String>| {
            let (client, calls) = (c.clone(), k.clone());
            async move { load_tags(&client, &calls, arns).await }.boxed()
        });
        let (c, k) = (client.clone(), calls.clone());
        // One key per listener: `max_batch` is never reached, so every caller within the window shares
        // the one answer.
        let rules = Batcher::new(usize::MAX, WINDOW, move |listener: String, _keys: Vec<()>| {
            let (client, calls) = (c.clone(), k.clone());
            async move {
                let rules = load_rules(&client, &calls, &listener).await?;
                Ok(HashMap::from([((), rules)]))
            }
            .boxed()
        });
        SdkElbv2 { client, calls, target_groups, tags, rules }
    }
}

/// An answer lacking a field ecsop needs.
fn missing(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(SERVICE, operation, ErrorKind::Other, format!("the answer has no {what}"))
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// The target groups among `names` that exist, by name.
///
/// DescribeTargetGroups with `Names` fails as a whole (TargetGroupNotFound) when any one name is
/// missing, without saying which. A single name is then simply absent; for several, the account's
/// target groups are listed (400 a page) and filtered, which costs one or two calls where asking name
/// by name would cost one per name.
async fn load_target_groups(
    client: &sdk::Client,
    calls: &Calls,
    names: Vec<String>,
) -> AwsResult<HashMap<String, TargetGroup>> {
    match describe_target_groups(client, calls, Some(&names)).await {
        Ok(found) => Ok(found),
        Err(e) if e.is_not_found() && names.len() == 1 => Ok(HashMap::new()),
        Err(e) if e.is_not_found() => {
            let mut all = describe_target_groups(client, calls, None).await?;
            all.retain(|name, _| names.contains(name));
            Ok(all)
        }
        Err(e) => Err(e),
    }
}

/// DescribeTargetGroups for these names (every target group when `None`), all pages.
async fn describe_target_groups(
    client: &sdk::Client,
    calls: &Calls,
    names: Option<&[String]>,
) -> AwsResult<HashMap<String, TargetGroup>> {
    const OP: &str = "DescribeTargetGroups";
    let mut found = HashMap::new();
    let mut marker: Option<String> = None;
    loop {
        let out = calls
            .run(SERVICE, OP, || {
                let request = client
                    .describe_target_groups()
                    .set_names(names.map(<[String]>::to_vec))
                    .set_marker(marker.clone())
                    .set_page_size(names.is_none().then_some(LIST_PAGE_SIZE));
                async move { request.send().await.map_err(AwsError::sdk(SERVICE, OP)) }
            })
            .await?;
        for tg in out.target_groups() {
            let tg = target_group(OP, tg)?;
            found.insert(tg.name.clone(), tg);
        }
        match out.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => return Ok(found),
        }
    }
}

fn target_group(operation: &'static str, tg: &sdk::types::TargetGroup) -> AwsResult<TargetGroup> {
    Ok(TargetGroup {
        arn: tg.target_group_arn().ok_or_else(|| missing(operation, "TargetGroupArn"))?.to_string(),
        name: tg.target_group_name().ok_or_else(|| missing(operation, "TargetGroupName"))?.to_string(),
        vpc_id: tg.vpc_id().unwrap_or_default().to_string(),
        port: tg.port().unwrap_or_default(),
        health: TargetGroupHealth {
            path: tg.health_check_path().unwrap_or_default().to_string(),
            interval_seconds: tg.health_check_interval_seconds().unwrap_or_default(),
            timeout_seconds: tg.health_check_timeout_seconds().unwrap_or_default(),
            healthy_threshold: tg.healthy_threshold_count().unwrap_or_default(),
            unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or_default(),
            matcher: tg.matcher().and_then(|m| m.http_code()).unwrap_or_default().to_string(),
        },
        load_balancer_arns: tg.load_balancer_arns().to_vec(),
    })
}

/// Tags of these ARNs. DescribeTags fails as a whole when one resource is missing; the batch is then
/// split in halves until the missing ARNs are isolated (they are left out of the answer).
async fn load_tags(client: &sdk::Client, calls: &Calls, arns: Vec<String>) -> AwsResult<HashMap<String, Tags>> {
    const OP: &str = "DescribeTags";
    let mut found = HashMap::new();
    let mut todo = vec![arns];
    while let Some(batch) = todo.pop() {
        let result = calls
            .run(SERVICE, OP, || {
                let request = client.describe_tags().set_resource_arns(Some(batch.clone()));
                async move { request.send().await.map_err(AwsError::sdk(SERVICE, OP)) }
            })
            .await;
        match result {
            Ok(out) => {
                for description in out.tag_descriptions() {
                    let arn = description.resource_arn().ok_or_else(|| missing(OP, "ResourceArn"))?;
                    let tags = description
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                        .collect();
                    found.insert(arn.to_string(), tags);
                }
            }
            Err(e) if e.is_not_found() && batch.len() > 1 => {
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                todo.push(first);
                todo.push(second);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Every rule of the listener, all pages.
async fn load_rules(client: &sdk::Client, calls: &Calls, listener_arn: &str) -> AwsResult<Vec<Rule>> {
    const OP: &str = "DescribeRules";
    let mut rules = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = calls
            .run(SERVICE, OP, || {
                let request =
                    client.describe_rules().listener_arn(listener_arn).page_size(RULES_PAGE).set_marker(marker.clone());
                async move { request.send().await.map_err(AwsError::sdk(SERVICE, OP)) }
            })
            .await?;
        for rule in out.rules() {
            rules.push(rule_from_sdk(OP, rule)?);
        }
        match out.next_marker() {
            Some(next) if !next.is_empty() => marker = Some(next.to_string()),
            _ => return Ok(rules),
        }
    }
}

/// ecsop's view of a rule: host and path values, forward targets, priority (`None` for the default).
fn rule_from_sdk(operation: &'static str, rule: &sdk::types::Rule) -> AwsResult<Rule> {
    let priority = match rule.priority() {
        None | Some("default") => None,
        Some(p) => Some(p.parse::<i32>().map_err(|_| {
            AwsError::new(SERVICE, operation, ErrorKind::Other, format!("rule priority {p:?} is not a number"))
        })?),
    };
    let mut hosts = Vec::new();
    let mut paths = Vec::new();
    let mut header = None;
    for condition in rule.conditions() {
        match condition.field() {
            Some("host-header") => {
                let values = condition.host_header_config().map(|c| c.values()).unwrap_or_default();
                hosts.extend_from_slice(if values.is_empty() { condition.values() } else { values });
            }
            Some("path-pattern") => {
                let values = condition.path_pattern_config().map(|c| c.values()).unwrap_or_default();
                paths.extend_from_slice(if values.is_empty() { condition.values() } else { values });
            }
            Some("http-header") => {
                header = condition.http_header_config().map(|c| HeaderMatch {
                    name: c.http_header_name().unwrap_or_default().to_string(),
                    values: c.values().to_vec(),
                });
            }
            _ => {}
        }
    }
    let mut target_groups: Vec<String> = Vec::new();
    let mut weights: Vec<i32> = Vec::new();
    for action in rule.actions().iter().filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward)) {
        let tuples = action.forward_config().map(|f| f.target_groups()).unwrap_or_default();
        // ELB answers a weight for each group of a ForwardConfig; a group without one counts 1.
        let arns = tuples
            .iter()
            .filter_map(|t| t.target_group_arn().map(|a| (a, t.weight())))
            .chain(action.target_group_arn().map(|a| (a, None)));
        for (arn, weight) in arns {
            if !target_groups.iter().any(|a| a == arn) {
                target_groups.push(arn.to_string());
                weights.push(weight.unwrap_or(if tuples.len() > 1 { 1 } else { 100 }));
            }
        }
    }
    if target_groups.len() < 2 {
        weights.clear();
    }
    let redirect = rule.actions().iter().find(|a| a.r#type() == Some(&ActionTypeEnum::Redirect)).and_then(|a| {
        let c = a.redirect_config()?;
        Some(Redirect {
            protocol: c.protocol().unwrap_or("#{protocol}").to_string(),
            port: c.port().unwrap_or("#{port}").to_string(),
            status_code: c.status_code().map(|s| s.as_str().to_string()).unwrap_or_default(),
        })
    });
    Ok(Rule {
        arn: rule.rule_arn().ok_or_else(|| missing(operation, "RuleArn"))?.to_string(),
        priority,
        hosts,
        paths,
        target_groups,
        weights,
        header,
        redirect,
    })
}

/// A host-header condition and a path-pattern condition, each only when it has values, and an
/// http-header condition when given.
fn conditions(hosts: &[String], paths: &[String], header: Option<&HeaderMatch>) -> Vec<RuleCondition> {
    let mut conditions = Vec::new();
    if let Some(h) = header {
        conditions.push(
            RuleCondition::builder()
                .field("http-header")
                .http_header_config(
                    sdk::types::HttpHeaderConditionConfig::builder()
                        .http_header_name(&h.name)
                        .set_values(Some(h.values.clone()))
                        .build(),
                )
                .build(),
        );
    }
    if !hosts.is_empty() {
        conditions.push(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(HostHeaderConditionConfig::builder().set_values(Some(hosts.to_vec())).build())
                .build(),
        );
    }
    if !paths.is_empty() {
        conditions.push(
            RuleCondition::builder()
                .field("path-pattern")
                .path_pattern_config(PathPatternConditionConfig::builder().set_values(Some(paths.to_vec())).build())
                .build(),
        );
    }
    conditions
}

/// The SDK action of a rule: forward to a target group, or redirect keeping host, path and query.
fn action(action: &RuleAction) -> Action {
    match action {
        RuleAction::Forward(target_group_arn) => {
            Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
        }
        RuleAction::Weighted(groups) => {
            let mut forward = sdk::types::ForwardActionConfig::builder();
            for (arn, weight) in groups {
                forward = forward.target_groups(
                    sdk::types::TargetGroupTuple::builder().target_group_arn(arn).weight(*weight).build(),
                );
            }
            Action::builder().r#type(ActionTypeEnum::Forward).forward_config(forward.build()).build()
        }
        RuleAction::Redirect(r) => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(&r.protocol)
                    .port(&r.port)
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(RedirectActionStatusCodeEnum::from(r.status_code.as_str()))
                    .build(),
            )
            .build(),
    }
}

#[async_trait]
impl Elbv2 for SdkElbv2 {
    async fn target_group(&self, name: &str) -> AwsResult<Option<TargetGroup>> {
        self.target_groups.load((), name.to_string()).await
    }

    async fn target_group_attributes(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        const OP: &str = "DescribeTargetGroupAttributes";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(out
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_string(), a.value().unwrap_or_default().to_string())))
            .collect())
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        self.tags
            .load((), arn.to_string())
            .await?
            .ok_or_else(|| AwsError::new(SERVICE, "DescribeTags", ErrorKind::NotFound, format!("{arn} does not exist")))
    }

    async fn create_target_group(&self, config: &TargetGroupConfig) -> AwsResult<TargetGroup> {
        const OP: &str = "CreateTargetGroup";
        let health = &config.health;
        let tags = (!config.tags.is_empty()).then(|| sdk_tags(&config.tags));
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .create_target_group()
                    .name(&config.name)
                    .protocol(ProtocolEnum::Http)
                    .target_type(TargetTypeEnum::Ip)
                    .port(config.port)
                    .vpc_id(&config.vpc_id)
                    .health_check_enabled(true)
                    .health_check_protocol(ProtocolEnum::Http)
                    .health_check_path(&health.path)
                    .health_check_interval_seconds(health.interval_seconds)
                    .health_check_timeout_seconds(health.timeout_seconds)
                    .healthy_threshold_count(health.healthy_threshold)
                    .unhealthy_threshold_count(health.unhealthy_threshold)
                    .matcher(Matcher::builder().http_code(&health.matcher).build())
                    .set_tags(tags.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        let tg = out.target_groups().first().ok_or_else(|| missing(OP, "target group"))?;
        target_group(OP, tg)
    }

    async fn modify_target_group(&self, arn: &str, health: &TargetGroupHealth) -> AwsResult<()> {
        const OP: &str = "ModifyTargetGroup";
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .modify_target_group()
                    .target_group_arn(arn)
                    .health_check_enabled(true)
                    .health_check_protocol(ProtocolEnum::Http)
                    .health_check_path(&health.path)
                    .health_check_interval_seconds(health.interval_seconds)
                    .health_check_timeout_seconds(health.timeout_seconds)
                    .healthy_threshold_count(health.healthy_threshold)
                    .unhealthy_threshold_count(health.unhealthy_threshold)
                    .matcher(Matcher::builder().http_code(&health.matcher).build())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn set_target_group_attributes(&self, arn: &str, attributes: &BTreeMap<String, String>) -> AwsResult<()> {
        const OP: &str = "ModifyTargetGroupAttributes";
        if attributes.is_empty() {
            return Ok(());
        }
        let attributes: Vec<TargetGroupAttribute> =
            attributes.iter().map(|(k, v)| TargetGroupAttribute::builder().key(k).value(v).build()).collect();
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .modify_target_group_attributes()
                    .target_group_arn(arn)
                    .set_attributes(Some(attributes.clone()))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> AwsResult<()> {
        const OP: &str = "DeleteTargetGroup";
        self.calls
            .run(SERVICE, OP, || async {
                self.client.delete_target_group().target_group_arn(arn).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await
            .missing_ok()
    }

    async fn rules(&self, listener_arn: &str) -> AwsResult<Vec<Rule>> {
        Ok(self.rules.load(listener_arn.to_string(), ()).await?.unwrap_or_default())
    }

    async fn create_rule(&self, config: &RuleConfig) -> AwsResult<Rule> {
        const OP: &str = "CreateRule";
        let conditions = conditions(&config.hosts, &config.paths, config.header.as_ref());
        let tags = (!config.tags.is_empty()).then(|| sdk_tags(&config.tags));
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .create_rule()
                    .listener_arn(&config.listener_arn)
                    .priority(config.priority)
                    .set_conditions(Some(conditions.clone()))
                    .actions(action(&config.action))
                    .set_tags(tags.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        let rule = out.rules().first().ok_or_else(|| missing(OP, "rule"))?;
        rule_from_sdk(OP, rule)
    }

    async fn modify_rule(
        &self,
        arn: &str,
        hosts: &[String],
        paths: &[String],
        rule_action: &RuleAction,
    ) -> AwsResult<()> {
        const OP: &str = "ModifyRule";
        let conditions = conditions(hosts, paths, None);
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .modify_rule()
                    .rule_arn(arn)
                    .set_conditions(Some(conditions.clone()))
                    .actions(action(rule_action))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn set_rule_priority(&self, arn: &str, priority: i32) -> AwsResult<()> {
        const OP: &str = "SetRulePriorities";
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .set_rule_priorities()
                    .rule_priorities(RulePriorityPair::builder().rule_arn(arn).priority(priority).build())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_rule(&self, arn: &str) -> AwsResult<()> {
        const OP: &str = "DeleteRule";
        self.calls
            .run(SERVICE, OP, || async {
                self.client.delete_rule().rule_arn(arn).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await
            .missing_ok()
    }

    async fn add_tags(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        const OP: &str = "AddTags";
        if tags.is_empty() {
            return Ok(());
        }
        let tags = sdk_tags(tags);
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .add_tags()
                    .resource_arns(arn)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        const OP: &str = "RemoveTags";
        if keys.is_empty() {
            return Ok(());
        }
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .remove_tags()
                    .resource_arns(arn)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(field: &str, values: &[&str], legacy: bool) -> RuleCondition {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let builder = RuleCondition::builder().field(field);
        match (field, legacy) {
            (_, true) => builder.set_values(Some(values)).build(),
            ("host-header", false) => builder
                .host_header_config(HostHeaderConditionConfig::builder().set_values(Some(values)).build())
                .build(),
            _ => builder
                .path_pattern_config(PathPatternConditionConfig::builder().set_values(Some(values)).build())
                .build(),
        }
    }

    #[test]
    fn rules_map_conditions_forward_targets_and_priorities() {
        let rule = sdk::types::Rule::builder()
            .rule_arn("arn:rule/1")
            .priority("7")
            .conditions(condition("host-header", &["a.example.com"], false))
            .conditions(condition("path-pattern", &["/api/*"], true))
            .conditions(condition("http-request-method", &["GET"], true))
            .actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn("arn:tg/1")
                    .forward_config(
                        sdk::types::ForwardActionConfig::builder()
                            .target_groups(
                                sdk::types::TargetGroupTuple::builder().target_group_arn("arn:tg/1").weight(90).build(),
                            )
                            .target_groups(
                                sdk::types::TargetGroupTuple::builder().target_group_arn("arn:tg/2").weight(10).build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        let mapped = rule_from_sdk("DescribeRules", &rule).expect("maps");
        assert_eq!(
            mapped,
            Rule {
                arn: "arn:rule/1".into(),
                priority: Some(7),
                hosts: vec!["a.example.com".into()],
                paths: vec!["/api/*".into()],
                target_groups: vec!["arn:tg/1".into(), "arn:tg/2".into()],
                weights: vec![90, 10],
                header: None,
                redirect: None,
            }
        );

        let default = sdk::types::Rule::builder()
            .rule_arn("arn:rule/default")
            .priority("default")
            .is_default(true)
            .actions(Action::builder().r#type(ActionTypeEnum::FixedResponse).build())
            .build();
        let mapped = rule_from_sdk("DescribeRules", &default).expect("maps");
        assert_eq!(mapped.priority, None);
        assert!(mapped.target_groups.is_empty() && mapped.hosts.is_empty());

        let bad = sdk::types::Rule::builder().rule_arn("arn:rule/x").priority("high").build();
        assert_eq!(rule_from_sdk("DescribeRules", &bad).expect_err("not a number").kind, ErrorKind::Other);
    }

    #[test]
    fn conditions_are_sent_only_when_they_have_values() {
        assert!(conditions(&[], &[], None).is_empty());
        let only_paths = conditions(&[], &["/x".to_string()], None);
        assert_eq!(only_paths.len(), 1);
        assert_eq!(only_paths[0].field(), Some("path-pattern"));
        let both = conditions(&["h".to_string()], &["/x".to_string()], None);
        assert_eq!(both[0].host_header_config().map(|c| c.values().to_vec()), Some(vec!["h".to_string()]));
    }

    fn calls() -> Calls {
        Calls::new(crate::aws::limiter::Limiter::unlimited(), crate::aws::calls::RetryPolicy::default())
    }

    fn not_found(code: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder().code(code).message("not found").build()
    }

    /// moto never fails DescribeTags for a missing resource (AWS does), so the split is shown here.
    #[tokio::test]
    async fn a_missing_arn_is_isolated_by_splitting_the_describe_tags_batch() {
        use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
        use sdk::operation::describe_tags::{DescribeTagsError, DescribeTagsOutput};
        let rule = mock!(sdk::Client::describe_tags).then_compute_response(|req| {
            if req.resource_arns().iter().any(|a| a == "arn:missing") {
                return MockResponse::Error(DescribeTagsError::generic(not_found("TargetGroupNotFound")));
            }
            let descriptions = req.resource_arns().iter().map(|arn| {
                sdk::types::TagDescription::builder()
                    .resource_arn(arn)
                    .tags(Tag::builder().key("name").value(arn).build())
                    .build()
            });
            MockResponse::Output(
                DescribeTagsOutput::builder().set_tag_descriptions(Some(descriptions.collect())).build(),
            )
        });
        let elb =
            SdkElbv2::with_client(mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&rule]), calls());
        let (a, b, missing, c) =
            tokio::join!(elb.tags("arn:a"), elb.tags("arn:b"), elb.tags("arn:missing"), elb.tags("arn:c"));
        for (arn, tags) in [("arn:a", a), ("arn:b", b), ("arn:c", c)] {
            assert_eq!(tags.expect("present").get("name").map(String::as_str), Some(arn));
        }
        assert_eq!(missing.expect_err("missing").kind, ErrorKind::NotFound);
        // [a b missing c] fails, [a b] answers, [missing c] fails, [missing] fails, [c] answers.
        assert_eq!(rule.num_calls(), 5);
    }

    #[tokio::test]
    async fn deleting_a_missing_rule_or_target_group_succeeds() {
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        use sdk::operation::delete_rule::DeleteRuleError;
        use sdk::operation::delete_target_group::DeleteTargetGroupError;
        let rule = mock!(sdk::Client::delete_rule).then_error(|| DeleteRuleError::generic(not_found("RuleNotFound")));
        let tg = mock!(sdk::Client::delete_target_group)
            .then_error(|| DeleteTargetGroupError::generic(not_found("TargetGroupNotFound")));
        let in_use = mock!(sdk::Client::delete_target_group).then_error(|| {
            DeleteTargetGroupError::generic(
                aws_smithy_types::error::ErrorMetadata::builder().code("ResourceInUse").message("in use").build(),
            )
        });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::Sequential, [&rule, &tg, &in_use]);
        let elb = SdkElbv2::with_client(client, calls());
        elb.delete_rule("arn:rule").await.expect("missing rule is success");
        elb.delete_target_group("arn:tg").await.expect("missing target group is success");
        let err = elb.delete_target_group("arn:tg").await.expect_err("in use");
        assert_eq!(err.kind, ErrorKind::Conflict);
    }
}
