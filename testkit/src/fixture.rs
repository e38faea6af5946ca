//! The network every ecsop deployment assumes: a VPC with two subnets and a security group, an ALB
//! with an HTTP listener, and an ECS cluster.
//!
//! EC2 is reached with its plain Query API over HTTP rather than `aws-sdk-ec2`: that crate alone
//! takes minutes to build, and the fixture only needs three calls.

use aws_sdk_elasticloadbalancingv2 as elbv2;

use crate::{Account, Error, Result};

/// The AWS pieces an ApiDeployment refers to but does not own.
#[derive(Debug, Clone)]
pub struct Network {
    /// The VPC.
    pub vpc_id: String,
    /// Two subnets in different availability zones.
    pub subnet_ids: Vec<String>,
    /// A security group in the VPC.
    pub security_group_id: String,
    /// The application load balancer.
    pub load_balancer_arn: String,
    /// Its HTTP listener on port 80 (default action: a fixed 404).
    pub listener_arn: String,
    /// The ECS cluster's name.
    pub cluster: String,
}

impl Account {
    /// Create the network fixture in this account (cluster named `cluster`).
    pub async fn network(&self, cluster: &str) -> Result<Network> {
        let vpc_id = self.ec2("CreateVpc", &[("CidrBlock", "10.0.0.0/16")], "vpcId").await?;
        let mut subnet_ids = Vec::new();
        for (cidr, zone) in [("10.0.1.0/24", "a"), ("10.0.2.0/24", "b")] {
            let az = format!("{}{zone}", self.region());
            let subnet = self
                .ec2("CreateSubnet", &[("VpcId", &vpc_id), ("CidrBlock", cidr), ("AvailabilityZone", &az)], "subnetId")
                .await?;
            subnet_ids.push(subnet);
        }
        let security_group_id = self
            .ec2(
                "CreateSecurityGroup",
                &[("GroupName", "ecsop-api"), ("GroupDescription", "API tasks"), ("VpcId", &vpc_id)],
                "groupId",
            )
            .await?;

        let config = self.sdk_config().await;
        let lb_client = elbv2::Client::new(&config);
        let lb = lb_client
            .create_load_balancer()
            .name("ecsop-alb")
            .set_subnets(Some(subnet_ids.clone()))
            .security_groups(&security_group_id)
            .r#type(elbv2::types::LoadBalancerTypeEnum::Application)
            .send()
            .await
            .map_err(|e| fixture("CreateLoadBalancer", e))?;
        let load_balancer_arn = lb
            .load_balancers()
            .first()
            .and_then(|l| l.load_balancer_arn())
            .ok_or_else(|| Error::Fixture { step: "CreateLoadBalancer", message: "no ARN returned".into() })?
            .to_string();
        let listener = lb_client
            .create_listener()
            .load_balancer_arn(&load_balancer_arn)
            .protocol(elbv2::types::ProtocolEnum::Http)
            .port(80)
            .default_actions(
                elbv2::types::Action::builder()
                    .r#type(elbv2::types::ActionTypeEnum::FixedResponse)
                    .fixed_response_config(
                        elbv2::types::FixedResponseActionConfig::builder()
                            .status_code("404")
                            .content_type("application/json")
                            .message_body(r#"{"error":"no route"}"#)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| fixture("CreateListener", e))?;
        let listener_arn = listener
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .ok_or_else(|| Error::Fixture { step: "CreateListener", message: "no ARN returned".into() })?
            .to_string();

        aws_sdk_ecs::Client::new(&config)
            .create_cluster()
            .cluster_name(cluster)
            .send()
            .await
            .map_err(|e| fixture("CreateCluster", e))?;

        Ok(Network {
            vpc_id,
            subnet_ids,
            security_group_id,
            load_balancer_arn,
            listener_arn,
            cluster: cluster.to_string(),
        })
    }

    /// An HTTPS listener on port 443 of `network`'s load balancer, with an ACM certificate for
    /// `*.example.com` (default action: a fixed 404). Returns its ARN.
    pub async fn https_listener(&self, network: &Network) -> Result<String> {
        // ACM through its JSON API.
        let response = self
            .unsigned_post("acm")
            .header("X-Amz-Target", "CertificateManager.RequestCertificate")
            .header("Content-Type", "application/x-amz-json-1.1")
            .body(r#"{"DomainName": "*.example.com", "ValidationMethod": "DNS"}"#)
            .send()
            .await
            .map_err(|e| fixture("RequestCertificate", e))?;
        let body: serde_json::Value = response.json().await.map_err(|e| fixture("RequestCertificate", e))?;
        let certificate = body["CertificateArn"]
            .as_str()
            .ok_or_else(|| Error::Fixture { step: "RequestCertificate", message: body.to_string() })?
            .to_string();
        let config = self.sdk_config().await;
        let listener = elbv2::Client::new(&config)
            .create_listener()
            .load_balancer_arn(&network.load_balancer_arn)
            .protocol(elbv2::types::ProtocolEnum::Https)
            .port(443)
            .certificates(elbv2::types::Certificate::builder().certificate_arn(certificate).build())
            .default_actions(
                elbv2::types::Action::builder()
                    .r#type(elbv2::types::ActionTypeEnum::FixedResponse)
                    .fixed_response_config(
                        elbv2::types::FixedResponseActionConfig::builder().status_code("404").build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| fixture("CreateListener", e))?;
        listener
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .map(str::to_string)
            .ok_or_else(|| Error::Fixture { step: "CreateListener", message: "no listener".into() })
    }

    /// A POST to `service`'s API on the emulator, unsigned: moto routes by the credential scope of the
    /// Authorization header and checks no signature.
    fn unsigned_post(&self, service: &str) -> reqwest::RequestBuilder {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/{}/{service}/aws4_request, SignedHeaders=host, Signature=0",
            self.access_key_id(),
            self.region()
        );
        reqwest::Client::new()
            .post(self.endpoint_url())
            .header("Authorization", authorization)
            .header("x-moto-account-id", self.id())
    }

    /// One EC2 Query API call; returns the text of the first `<tag>` element of the answer.
    async fn ec2(&self, action: &'static str, params: &[(&str, &str)], tag: &str) -> Result<String> {
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", "2016-11-15")];
        form.extend_from_slice(params);
        let response = self.unsigned_post("ec2").form(&form).send().await.map_err(|e| fixture(action, e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| fixture(action, e))?;
        if !status.is_success() {
            return Err(Error::Fixture { step: action, message: format!("{status}: {body}") });
        }
        xml_text(&body, tag)
            .map(str::to_string)
            .ok_or_else(|| Error::Fixture { step: action, message: format!("no <{tag}> in {body}") })
    }
}

fn fixture(step: &'static str, error: impl std::fmt::Display) -> Error {
    Error::Fixture { step, message: error.to_string() }
}

/// The text of the first `<tag>...</tag>` element (EC2's answers are flat enough for this).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + end].trim())
}

#[cfg(test)]
mod tests {
    use super::xml_text;

    #[test]
    fn xml_text_finds_the_first_element() {
        let xml = "<r><vpc><vpcId>vpc-1</vpcId></vpc><vpcId>vpc-2</vpcId></r>";
        assert_eq!(xml_text(xml, "vpcId"), Some("vpc-1"));
        assert_eq!(xml_text(xml, "subnetId"), None);
    }
}
