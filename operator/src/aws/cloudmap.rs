//! The Cloud Map adapter over `aws-sdk-servicediscovery`.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_servicediscovery as sdk;
use sdk::types::{
    DnsConfig, DnsConfigChange, DnsRecord, FilterCondition, HealthCheckCustomConfig, RecordType, RoutingPolicy,
    ServiceChange, ServiceFilter, ServiceFilterName, Tag,
};

use super::calls::{self, Calls};
use super::error::MissingOk;
use super::{AwsError, AwsResult, CloudMap, DiscoveryService, ErrorKind, Tags};
use crate::api::DnsRecordType;

const SERVICE: &str = "servicediscovery";

/// [`CloudMap`] through the AWS SDK.
#[derive(Debug)]
pub struct SdkCloudMap {
    client: sdk::Client,
    calls: Calls,
}

impl SdkCloudMap {
    /// An adapter using `config` (region, endpoint, credentials), with the SDK's own retries off:
    /// `calls` rate-limits, retries and counts every call.
    pub fn new(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = sdk::config::Builder::from(config).retry_config(calls::sdk_retry_config()).build();
        Self::with_client(sdk::Client::from_conf(conf), calls)
    }

    fn with_client(client: sdk::Client, calls: Calls) -> Self {
        SdkCloudMap { client, calls }
    }
}

/// A request ecsop could not build (a required field left empty).
fn build_err(operation: &'static str) -> impl FnOnce(sdk::error::BuildError) -> AwsError {
    move |e| AwsError::new(SERVICE, operation, ErrorKind::Invalid, e.to_string())
}

fn missing(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(SERVICE, operation, ErrorKind::Other, format!("the answer has no {what}"))
}

fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Srv => RecordType::Srv,
    }
}

fn dns_record(operation: &'static str, t: DnsRecordType, ttl_seconds: i64) -> AwsResult<DnsRecord> {
    DnsRecord::builder().r#type(record_type(t)).ttl(ttl_seconds).build().map_err(build_err(operation))
}

fn sdk_tags(operation: &'static str, tags: &Tags) -> AwsResult<Vec<Tag>> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(build_err(operation))).collect()
}

/// The first A or SRV record of a DNS config, as (type, TTL).
fn dns_record_of(config: &DnsConfig) -> Option<(DnsRecordType, i64)> {
    config.dns_records().iter().find_map(|r| match r.r#type() {
        RecordType::A => Some((DnsRecordType::A, r.ttl())),
        RecordType::Srv => Some((DnsRecordType::Srv, r.ttl())),
        _ => None,
    })
}

/// A service in ecsop's terms; an error when it has no A or SRV record (ecsop creates none such).
fn discovery_service(
    operation: &'static str,
    id: Option<&str>,
    arn: Option<&str>,
    name: Option<&str>,
    namespace_id: &str,
    dns: Option<&DnsConfig>,
) -> AwsResult<DiscoveryService> {
    let id = id.ok_or_else(|| missing(operation, "service Id"))?;
    let (record_type, ttl_seconds) = dns.and_then(dns_record_of).ok_or_else(|| {
        AwsError::new(
            SERVICE,
            operation,
            ErrorKind::Other,
            format!("Cloud Map service {id} has no A or SRV DNS record"),
        )
    })?;
    Ok(DiscoveryService {
        id: id.to_string(),
        arn: arn.ok_or_else(|| missing(operation, "service Arn"))?.to_string(),
        name: name.ok_or_else(|| missing(operation, "service Name"))?.to_string(),
        namespace_id: namespace_id.to_string(),
        record_type,
        ttl_seconds,
    })
}

/// A CreatorRequestId kept across the retries of one CreateService, so a retried create that did reach
/// AWS does not make a second service.
fn creator_request_id(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut id = format!("ecsop-{nanos:x}-{name}");
    id.truncate(64);
    id
}

#[async_trait]
impl CloudMap for SdkCloudMap {
    async fn find_service(&self, namespace_id: &str, name: &str) -> AwsResult<Option<DiscoveryService>> {
        const OP: &str = "ListServices";
        let filter = ServiceFilter::builder()
            .name(ServiceFilterName::NamespaceId)
            .values(namespace_id)
            .condition(FilterCondition::Eq)
            .build()
            .map_err(build_err(OP))?;
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .calls
                .run(SERVICE, OP, || async {
                    self.client
                        .list_services()
                        .filters(filter.clone())
                        .set_next_token(next_token.clone())
                        .send()
                        .await
                        .map_err(AwsError::sdk(SERVICE, OP))
                })
                .await?;
            if let Some(summary) = out.services().iter().find(|s| s.name() == Some(name)) {
                if summary.dns_config().is_some_and(|d| dns_record_of(d).is_some()) {
                    return discovery_service(
                        OP,
                        summary.id(),
                        summary.arn(),
                        summary.name(),
                        namespace_id,
                        summary.dns_config(),
                    )
                    .map(Some);
                }
                // The summary lacks the DNS records: ask for the whole service.
                let id = summary.id().ok_or_else(|| missing(OP, "service Id"))?;
                return self.get_service(id).await.map(Some);
            }
            match out.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn tags(&self, arn: &str) -> AwsResult<Tags> {
        const OP: &str = "ListTagsForResource";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client.list_tags_for_resource().resource_arn(arn).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
    }

    async fn create_service(
        &self,
        namespace_id: &str,
        name: &str,
        record_type: DnsRecordType,
        ttl_seconds: i64,
        tags: &Tags,
    ) -> AwsResult<DiscoveryService> {
        const OP: &str = "CreateService";
        // The namespace goes at the top level of the request: DnsConfig.NamespaceId is deprecated.
        let dns_config = DnsConfig::builder()
            .routing_policy(RoutingPolicy::Multivalue)
            .dns_records(dns_record(OP, record_type, ttl_seconds)?)
            .build()
            .map_err(build_err(OP))?;
        let tags = (!tags.is_empty()).then(|| sdk_tags(OP, tags)).transpose()?;
        let request_id = creator_request_id(name);
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .create_service()
                    .name(name)
                    .namespace_id(namespace_id)
                    .creator_request_id(&request_id)
                    .dns_config(dns_config.clone())
                    .health_check_custom_config(HealthCheckCustomConfig::builder().build())
                    .set_tags(tags.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        let service = out.service().ok_or_else(|| missing(OP, "Service"))?;
        discovery_service(
            OP,
            service.id(),
            service.arn(),
            service.name(),
            service.namespace_id().unwrap_or(namespace_id),
            service.dns_config(),
        )
    }

    async fn update_ttl(&self, id: &str, record_type: DnsRecordType, ttl_seconds: i64) -> AwsResult<()> {
        const OP: &str = "UpdateService";
        let change = ServiceChange::builder()
            .dns_config(
                DnsConfigChange::builder()
                    .dns_records(dns_record(OP, record_type, ttl_seconds)?)
                    .build()
                    .map_err(build_err(OP))?,
            )
            .build();
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .update_service()
                    .id(id)
                    .service(change.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_service(&self, id: &str) -> AwsResult<()> {
        const OP: &str = "DeleteService";
        self.calls
            .run(SERVICE, OP, || async {
                self.client.delete_service().id(id).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await
            .missing_ok()
    }

    async fn tag(&self, arn: &str, tags: &Tags) -> AwsResult<()> {
        const OP: &str = "TagResource";
        if tags.is_empty() {
            return Ok(());
        }
        let tags = sdk_tags(OP, tags)?;
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        const OP: &str = "UntagResource";
        if keys.is_empty() {
            return Ok(());
        }
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }
}

impl SdkCloudMap {
    /// GetService, for the fields a ListServices summary lacks.
    async fn get_service(&self, id: &str) -> AwsResult<DiscoveryService> {
        const OP: &str = "GetService";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client.get_service().id(id).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        let service = out.service().ok_or_else(|| missing(OP, "Service"))?;
        let namespace_id = service.namespace_id().ok_or_else(|| missing(OP, "NamespaceId"))?;
        discovery_service(OP, service.id(), service.arn(), service.name(), namespace_id, service.dns_config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_a_or_srv_record_is_the_services_type_and_ttl() {
        let record = |t: RecordType, ttl| DnsRecord::builder().r#type(t).ttl(ttl).build().expect("record");
        let config = DnsConfig::builder()
            .dns_records(record(RecordType::Aaaa, 5))
            .dns_records(record(RecordType::Srv, 30))
            .build()
            .expect("config");
        assert_eq!(dns_record_of(&config), Some((DnsRecordType::Srv, 30)));
        let none = DnsConfig::builder().dns_records(record(RecordType::Cname, 5)).build().expect("config");
        assert_eq!(dns_record_of(&none), None);
        let err = discovery_service("ListServices", Some("srv-1"), Some("arn"), Some("n"), "ns-1", Some(&none))
            .expect_err("no A or SRV");
        assert!(err.message.contains("srv-1"), "{err}");
    }

    #[test]
    fn creator_request_ids_fit_the_64_character_limit() {
        assert!(creator_request_id(&"x".repeat(200)).len() <= 64);
        assert!(creator_request_id("api").ends_with("-api"));
    }

    fn error(code: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder().code(code).message(code).build()
    }

    /// moto deletes a missing service silently and never reports one in use; AWS does both.
    #[tokio::test]
    async fn deleting_a_missing_service_succeeds_and_one_in_use_is_a_conflict() {
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        use sdk::operation::delete_service::DeleteServiceError;
        let missing =
            mock!(sdk::Client::delete_service).then_error(|| DeleteServiceError::generic(error("ServiceNotFound")));
        let in_use =
            mock!(sdk::Client::delete_service).then_error(|| DeleteServiceError::generic(error("ResourceInUse")));
        let client = mock_client!(aws_sdk_servicediscovery, RuleMode::Sequential, [&missing, &in_use]);
        let cloudmap = SdkCloudMap::with_client(
            client,
            Calls::new(crate::aws::limiter::Limiter::unlimited(), crate::aws::calls::RetryPolicy::default()),
        );
        cloudmap.delete_service("srv-1").await.expect("missing is success");
        assert_eq!(cloudmap.delete_service("srv-1").await.expect_err("in use").kind, ErrorKind::Conflict);
    }
}
