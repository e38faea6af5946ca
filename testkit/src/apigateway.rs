//! What an API Gateway private integration assumes but does not own: an HTTP API with a VPC link into
//! the network, and a Cloud Map namespace its services are registered in.

use aws_sdk_apigatewayv2 as apigw;
use aws_sdk_servicediscovery as sd;

use crate::{Account, Error, Network, Result};

/// An HTTP API and a VPC link into the network fixture's subnets.
#[derive(Debug, Clone)]
pub struct HttpApi {
    /// The API id.
    pub api_id: String,
    /// The VPC link id.
    pub vpc_link_id: String,
}

impl Account {
    /// Create an HTTP API named `name` with a `$default` stage that does not deploy by itself, and a VPC
    /// link (also `name`) into `network`'s subnets and security group.
    pub async fn http_api(&self, name: &str, network: &Network) -> Result<HttpApi> {
        let client = apigw::Client::new(&self.sdk_config().await);
        let api = client
            .create_api()
            .name(name)
            .protocol_type(apigw::types::ProtocolType::Http)
            .send()
            .await
            .map_err(|e| fixture("CreateApi", e))?;
        let api_id = api.api_id().ok_or_else(|| no_id("CreateApi"))?.to_string();
        // The stage traffic goes through; it does not deploy by itself, so every change must be
        // deployed to it (an auto-deploying stage needs nothing more).
        client
            .create_stage()
            .api_id(&api_id)
            .stage_name("$default")
            .auto_deploy(false)
            .send()
            .await
            .map_err(|e| fixture("CreateStage", e))?;
        let link = client
            .create_vpc_link()
            .name(name)
            .set_subnet_ids(Some(network.subnet_ids.clone()))
            .security_group_ids(&network.security_group_id)
            .send()
            .await
            .map_err(|e| fixture("CreateVpcLink", e))?;
        let vpc_link_id = link.vpc_link_id().ok_or_else(|| no_id("CreateVpcLink"))?.to_string();
        Ok(HttpApi { api_id, vpc_link_id })
    }

    /// Create a private DNS namespace `name` in `network`'s VPC; returns its id.
    ///
    /// CreatePrivateDnsNamespace answers with an operation id only, so the id comes from ListNamespaces.
    pub async fn cloud_map_namespace(&self, name: &str, network: &Network) -> Result<String> {
        let client = sd::Client::new(&self.sdk_config().await);
        client
            .create_private_dns_namespace()
            .name(name)
            .vpc(&network.vpc_id)
            .send()
            .await
            .map_err(|e| fixture("CreatePrivateDnsNamespace", e))?;
        let mut next_token = None;
        loop {
            let page = client
                .list_namespaces()
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| fixture("ListNamespaces", e))?;
            if let Some(id) = page.namespaces().iter().find(|n| n.name() == Some(name)).and_then(|n| n.id()) {
                return Ok(id.to_string());
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Err(Error::Fixture { step: "ListNamespaces", message: format!("{name} not listed") }),
            }
        }
    }
}

fn fixture(step: &'static str, error: impl std::error::Error) -> Error {
    // The SDK's Display is only "service error": the source chain holds AWS's code and message.
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    Error::Fixture { step, message }
}

fn no_id(step: &'static str) -> Error {
    Error::Fixture { step, message: "no id returned".into() }
}
