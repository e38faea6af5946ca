//! The API Gateway HTTP API adapter over `aws-sdk-apigatewayv2`: one private integration (HTTP_PROXY over
//! a VPC link to a Cloud Map service), the routes targeting it and a JWT authorizer, on an existing API.

use async_trait::async_trait;
use aws_sdk_apigatewayv2 as sdk;
use sdk::types::{AuthorizationType, AuthorizerType, ConnectionType, IntegrationType, JwtConfiguration};

use super::calls::{self, Calls};
use super::error::MissingOk;
use super::{
    ApiGateway, Authorizer, AuthorizerConfig, AwsError, AwsResult, ErrorKind, Integration, IntegrationConfig, Route,
    RouteConfig, Stage,
};

const SERVICE: &str = "apigatewayv2";
/// The HTTP method the integration uses towards the backend: the request's own.
const INTEGRATION_METHOD: &str = "ANY";
/// API Gateway's v1.0 proxy payload: the backend sees the request as the client sent it.
const PAYLOAD_FORMAT_VERSION: &str = "1.0";

/// [`ApiGateway`] through the AWS SDK.
#[derive(Debug)]
pub struct SdkApiGateway {
    client: sdk::Client,
    calls: Calls,
}

impl SdkApiGateway {
    /// An adapter using `config` (region, endpoint, credentials), with the SDK's own retries off:
    /// `calls` rate-limits, retries and counts every call.
    pub fn new(config: &aws_config::SdkConfig, calls: Calls) -> Self {
        let conf = sdk::config::Builder::from(config).retry_config(calls::sdk_retry_config()).build();
        Self::with_client(sdk::Client::from_conf(conf), calls)
    }

    fn with_client(client: sdk::Client, calls: Calls) -> Self {
        SdkApiGateway { client, calls }
    }
}

fn missing(operation: &'static str, what: &str) -> AwsError {
    AwsError::new(SERVICE, operation, ErrorKind::Other, format!("the answer has no {what}"))
}

/// A non-empty string, or `None` (AWS omits unset fields; an empty one means unset too).
fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// An integration in ecsop's terms, from the fields every integration-shaped answer has (the Get*,
/// Create* and Update* outputs and [`sdk::types::Integration`] are distinct types with the same getters).
macro_rules! integration_of {
    ($operation:expr, $i:expr) => {{
        let i = $i;
        Ok::<_, AwsError>(Integration {
            id: i.integration_id().ok_or_else(|| missing($operation, "IntegrationId"))?.to_string(),
            integration_type: i
                .integration_type()
                .ok_or_else(|| missing($operation, "IntegrationType"))?
                .as_str()
                .to_string(),
            connection_type: i.connection_type().map(|t| t.as_str().to_string()),
            connection_id: non_empty(i.connection_id()),
            uri: non_empty(i.integration_uri()),
            method: non_empty(i.integration_method()),
            payload_format_version: non_empty(i.payload_format_version()),
            description: non_empty(i.description()),
        })
    }};
}

/// A route in ecsop's terms (see [`integration_of!`] for why a macro). A route without an authorization
/// type is open (`NONE`, AWS's default); an empty authorizer id is none.
macro_rules! route_of {
    ($operation:expr, $r:expr) => {{
        let r = $r;
        Ok::<_, AwsError>(Route {
            id: r.route_id().ok_or_else(|| missing($operation, "RouteId"))?.to_string(),
            key: r.route_key().ok_or_else(|| missing($operation, "RouteKey"))?.to_string(),
            target: non_empty(r.target()),
            authorization_type: r.authorization_type().map_or("NONE", |t| t.as_str()).to_string(),
            authorizer_id: non_empty(r.authorizer_id()),
        })
    }};
}

/// An authorizer in ecsop's terms (see [`integration_of!`] for why a macro): identity sources joined with
/// commas (a JWT authorizer has one), audiences sorted, issuer and audience empty without a JWT config.
macro_rules! authorizer_of {
    ($operation:expr, $a:expr) => {{
        let a = $a;
        let jwt = a.jwt_configuration();
        let mut audience = jwt.map(|j| j.audience().to_vec()).unwrap_or_default();
        audience.sort();
        Ok::<_, AwsError>(Authorizer {
            id: a.authorizer_id().ok_or_else(|| missing($operation, "AuthorizerId"))?.to_string(),
            authorizer_type: a
                .authorizer_type()
                .ok_or_else(|| missing($operation, "AuthorizerType"))?
                .as_str()
                .to_string(),
            config: AuthorizerConfig {
                name: a.name().ok_or_else(|| missing($operation, "Name"))?.to_string(),
                issuer: jwt.and_then(|j| j.issuer()).unwrap_or_default().to_string(),
                audience,
                identity_source: a.identity_source().join(","),
            },
        })
    }};
}

fn jwt_configuration(config: &AuthorizerConfig) -> JwtConfiguration {
    JwtConfiguration::builder().issuer(&config.issuer).set_audience(Some(config.audience.clone())).build()
}

/// JWT with the authorizer when the route has one, else open.
fn authorization(config: &RouteConfig) -> AuthorizationType {
    if config.authorizer_id.is_some() { AuthorizationType::Jwt } else { AuthorizationType::None }
}

/// The next page's token, if there is one.
fn next_page(token: Option<&str>) -> Option<String> {
    token.filter(|t| !t.is_empty()).map(str::to_string)
}

impl SdkApiGateway {
    /// Every item of a paged Get* call: `fetch(token)` asks for one page (through [`Calls`]), `items`
    /// maps a page's items into ecsop's types, `next` is the page's NextToken.
    async fn all_pages<O, T, Fut>(
        &self,
        operation: &'static str,
        fetch: impl Fn(Option<String>) -> Fut,
        items: impl Fn(&O) -> AwsResult<Vec<T>>,
        next: impl Fn(&O) -> Option<&str>,
    ) -> AwsResult<Vec<T>>
    where
        Fut: std::future::Future<Output = AwsResult<O>>,
    {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self.calls.run(SERVICE, operation, || fetch(token.clone())).await?;
            all.extend(items(&out)?);
            match next_page(next(&out)) {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }
}

#[async_trait]
impl ApiGateway for SdkApiGateway {
    async fn integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>> {
        const OP: &str = "GetIntegrations";
        self.all_pages(
            OP,
            |token| async move {
                self.client
                    .get_integrations()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            },
            |out| out.items().iter().map(|x| integration_of!(OP, x)).collect(),
            |out| out.next_token(),
        )
        .await
    }

    async fn create_integration(&self, api_id: &str, config: &IntegrationConfig) -> AwsResult<Integration> {
        const OP: &str = "CreateIntegration";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .create_integration()
                    .api_id(api_id)
                    .integration_type(IntegrationType::HttpProxy)
                    .connection_type(ConnectionType::VpcLink)
                    .connection_id(&config.vpc_link_id)
                    .integration_uri(&config.service_arn)
                    .integration_method(INTEGRATION_METHOD)
                    .payload_format_version(PAYLOAD_FORMAT_VERSION)
                    .description(&config.description)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        integration_of!(OP, &out)
    }

    async fn update_integration(&self, api_id: &str, id: &str, config: &IntegrationConfig) -> AwsResult<()> {
        const OP: &str = "UpdateIntegration";
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .update_integration()
                    .api_id(api_id)
                    .integration_id(id)
                    .integration_type(IntegrationType::HttpProxy)
                    .connection_type(ConnectionType::VpcLink)
                    .connection_id(&config.vpc_link_id)
                    .integration_uri(&config.service_arn)
                    .integration_method(INTEGRATION_METHOD)
                    .payload_format_version(PAYLOAD_FORMAT_VERSION)
                    .description(&config.description)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()> {
        const OP: &str = "DeleteIntegration";
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .delete_integration()
                    .api_id(api_id)
                    .integration_id(id)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await
            .missing_ok()
    }

    async fn routes(&self, api_id: &str) -> AwsResult<Vec<Route>> {
        const OP: &str = "GetRoutes";
        self.all_pages(
            OP,
            |token| async move {
                self.client
                    .get_routes()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            },
            |out| out.items().iter().map(|x| route_of!(OP, x)).collect(),
            |out| out.next_token(),
        )
        .await
    }

    async fn create_route(&self, api_id: &str, config: &RouteConfig) -> AwsResult<Route> {
        const OP: &str = "CreateRoute";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .create_route()
                    .api_id(api_id)
                    .route_key(&config.key)
                    .target(&config.target)
                    .authorization_type(authorization(config))
                    .set_authorizer_id(config.authorizer_id.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        route_of!(OP, &out)
    }

    async fn update_route(&self, api_id: &str, id: &str, config: &RouteConfig) -> AwsResult<()> {
        const OP: &str = "UpdateRoute";
        // An omitted AuthorizerId keeps the route's authorizer; an empty one removes it.
        let authorizer_id = config.authorizer_id.clone().unwrap_or_default();
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .update_route()
                    .api_id(api_id)
                    .route_id(id)
                    .route_key(&config.key)
                    .target(&config.target)
                    .authorization_type(authorization(config))
                    .authorizer_id(&authorizer_id)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_route(&self, api_id: &str, id: &str) -> AwsResult<()> {
        const OP: &str = "DeleteRoute";
        self.calls
            .run(SERVICE, OP, || async {
                self.client.delete_route().api_id(api_id).route_id(id).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await
            .missing_ok()
    }

    async fn authorizers(&self, api_id: &str) -> AwsResult<Vec<Authorizer>> {
        const OP: &str = "GetAuthorizers";
        self.all_pages(
            OP,
            |token| async move {
                self.client
                    .get_authorizers()
                    .api_id(api_id)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            },
            |out| out.items().iter().map(|x| authorizer_of!(OP, x)).collect(),
            |out| out.next_token(),
        )
        .await
    }

    async fn create_authorizer(&self, api_id: &str, config: &AuthorizerConfig) -> AwsResult<Authorizer> {
        const OP: &str = "CreateAuthorizer";
        let jwt = jwt_configuration(config);
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .create_authorizer()
                    .api_id(api_id)
                    .authorizer_type(AuthorizerType::Jwt)
                    .name(&config.name)
                    .identity_source(&config.identity_source)
                    .jwt_configuration(jwt.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        authorizer_of!(OP, &out)
    }

    async fn update_authorizer(&self, api_id: &str, id: &str, config: &AuthorizerConfig) -> AwsResult<()> {
        const OP: &str = "UpdateAuthorizer";
        let jwt = jwt_configuration(config);
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .update_authorizer()
                    .api_id(api_id)
                    .authorizer_id(id)
                    .authorizer_type(AuthorizerType::Jwt)
                    .name(&config.name)
                    .identity_source(&config.identity_source)
                    .jwt_configuration(jwt.clone())
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        Ok(())
    }

    async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()> {
        const OP: &str = "DeleteAuthorizer";
        self.calls
            .run(SERVICE, OP, || async {
                self.client
                    .delete_authorizer()
                    .api_id(api_id)
                    .authorizer_id(id)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await
            .missing_ok()
    }

    async fn stage(&self, api_id: &str, name: &str) -> AwsResult<Option<Stage>> {
        const OP: &str = "GetStage";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client.get_stage().api_id(api_id).stage_name(name).send().await.map_err(AwsError::sdk(SERVICE, OP))
            })
            .await;
        match out {
            Ok(out) => Ok(Some(Stage {
                name: out.stage_name().unwrap_or(name).to_string(),
                auto_deploy: out.auto_deploy().unwrap_or(false),
                deployment_id: out.deployment_id().map(str::to_string),
            })),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_deployment(&self, api_id: &str, stage: &str, description: &str) -> AwsResult<String> {
        const OP: &str = "CreateDeployment";
        let out = self
            .calls
            .run(SERVICE, OP, || async {
                self.client
                    .create_deployment()
                    .api_id(api_id)
                    .stage_name(stage)
                    .description(description)
                    .send()
                    .await
                    .map_err(AwsError::sdk(SERVICE, OP))
            })
            .await?;
        out.deployment_id()
            .map(str::to_string)
            .ok_or_else(|| AwsError::new(SERVICE, OP, ErrorKind::Other, "answer has no deployment id"))
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use sdk::operation::create_authorizer::CreateAuthorizerOutput;
    use sdk::operation::create_integration::CreateIntegrationOutput;
    use sdk::operation::create_route::CreateRouteOutput;
    use sdk::operation::get_routes::GetRoutesOutput;
    use sdk::operation::update_route::UpdateRouteOutput;

    use super::*;
    use crate::aws::calls::RetryPolicy;
    use crate::aws::limiter::Limiter;

    fn adapter(client: sdk::Client) -> SdkApiGateway {
        SdkApiGateway::with_client(client, Calls::new(Limiter::unlimited(), RetryPolicy::default()))
    }

    fn error(code: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder().code(code).message(code).build()
    }

    const SERVICE_ARN: &str = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-1";

    #[tokio::test]
    async fn an_integration_is_a_private_http_proxy_to_the_cloud_map_service() {
        let rule = mock!(sdk::Client::create_integration)
            .match_requests(|r| {
                r.api_id() == Some("api1")
                    && r.integration_type() == Some(&IntegrationType::HttpProxy)
                    && r.connection_type() == Some(&ConnectionType::VpcLink)
                    && r.connection_id() == Some("vl1")
                    && r.integration_uri() == Some(SERVICE_ARN)
                    && r.integration_method() == Some("ANY")
                    && r.payload_format_version() == Some("1.0")
                    && r.description() == Some("ecsop:default/books-api")
            })
            .then_output(|| {
                CreateIntegrationOutput::builder()
                    .integration_id("int1")
                    .integration_type(IntegrationType::HttpProxy)
                    .connection_type(ConnectionType::VpcLink)
                    .connection_id("vl1")
                    .integration_uri(SERVICE_ARN)
                    .integration_method("ANY")
                    .payload_format_version("1.0")
                    .description("ecsop:default/books-api")
                    .build()
            });
        let api = adapter(mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, &[&rule]));
        let config = IntegrationConfig {
            vpc_link_id: "vl1".into(),
            service_arn: SERVICE_ARN.into(),
            description: "ecsop:default/books-api".into(),
        };
        let created = api.create_integration("api1", &config).await.expect("create");
        assert_eq!(
            created,
            Integration {
                id: "int1".into(),
                integration_type: "HTTP_PROXY".into(),
                connection_type: Some("VPC_LINK".into()),
                connection_id: Some("vl1".into()),
                uri: Some(SERVICE_ARN.into()),
                method: Some("ANY".into()),
                payload_format_version: Some("1.0".into()),
                description: Some("ecsop:default/books-api".into()),
            }
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_route_with_an_authorizer_is_jwt_and_one_without_is_open() {
        let jwt = mock!(sdk::Client::create_route)
            .match_requests(|r| {
                r.route_key() == Some("GET /api/v1/movies")
                    && r.target() == Some("integrations/int1")
                    && r.authorization_type() == Some(&AuthorizationType::Jwt)
                    && r.authorizer_id() == Some("auth1")
            })
            .then_output(|| {
                CreateRouteOutput::builder()
                    .route_id("r1")
                    .route_key("GET /api/v1/movies")
                    .target("integrations/int1")
                    .authorization_type(AuthorizationType::Jwt)
                    .authorizer_id("auth1")
                    .build()
            });
        let open = mock!(sdk::Client::create_route)
            .match_requests(|r| {
                r.route_key() == Some("GET /health")
                    && r.authorization_type() == Some(&AuthorizationType::None)
                    && r.authorizer_id().is_none()
            })
            .then_output(|| {
                // AWS answers an open route without an authorizer id; moto with an empty one after an update.
                CreateRouteOutput::builder()
                    .route_id("r2")
                    .route_key("GET /health")
                    .target("integrations/int1")
                    .authorization_type(AuthorizationType::None)
                    .authorizer_id("")
                    .build()
            });
        let api = adapter(mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, &[&jwt, &open]));
        let route = |key: &str, authorizer: Option<&str>| RouteConfig {
            key: key.into(),
            target: "integrations/int1".into(),
            authorizer_id: authorizer.map(str::to_string),
        };
        let r1 = api.create_route("api1", &route("GET /api/v1/movies", Some("auth1"))).await.expect("jwt route");
        assert_eq!((r1.authorization_type.as_str(), r1.authorizer_id.as_deref()), ("JWT", Some("auth1")));
        let r2 = api.create_route("api1", &route("GET /health", None)).await.expect("open route");
        assert_eq!(
            r2,
            Route {
                id: "r2".into(),
                key: "GET /health".into(),
                target: Some("integrations/int1".into()),
                authorization_type: "NONE".into(),
                authorizer_id: None,
            }
        );
        assert_eq!((jwt.num_calls(), open.num_calls()), (1, 1));
    }

    /// UpdateRoute keeps an omitted AuthorizerId: making a route open must clear it explicitly.
    #[tokio::test]
    async fn updating_a_route_to_open_clears_its_authorizer() {
        let rule = mock!(sdk::Client::update_route)
            .match_requests(|r| {
                r.route_id() == Some("r1")
                    && r.route_key() == Some("GET /api/v1/movies")
                    && r.target() == Some("integrations/int2")
                    && r.authorization_type() == Some(&AuthorizationType::None)
                    && r.authorizer_id() == Some("")
            })
            .then_output(|| UpdateRouteOutput::builder().route_id("r1").route_key("GET /api/v1/movies").build());
        let api = adapter(mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, &[&rule]));
        let open =
            RouteConfig { key: "GET /api/v1/movies".into(), target: "integrations/int2".into(), authorizer_id: None };
        api.update_route("api1", "r1", &open).await.expect("update");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_authorizer_is_a_jwt_authorizer_with_issuer_and_audience() {
        let rule = mock!(sdk::Client::create_authorizer)
            .match_requests(|r| {
                r.authorizer_type() == Some(&AuthorizerType::Jwt)
                    && r.name() == Some("ecsop-books-api")
                    && r.identity_source() == ["$request.header.Authorization"]
                    && r.jwt_configuration().and_then(|j| j.issuer()) == Some("https://issuer.example.com/")
                    && r.jwt_configuration().map(|j| j.audience()) == Some(&["api".to_string(), "web".to_string()][..])
            })
            .then_output(|| {
                CreateAuthorizerOutput::builder()
                    .authorizer_id("auth1")
                    .authorizer_type(AuthorizerType::Jwt)
                    .name("ecsop-books-api")
                    .identity_source("$request.header.Authorization")
                    .jwt_configuration(
                        JwtConfiguration::builder()
                            .issuer("https://issuer.example.com/")
                            .audience("web")
                            .audience("api")
                            .build(),
                    )
                    .build()
            });
        let api = adapter(mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, &[&rule]));
        let config = AuthorizerConfig {
            name: "ecsop-books-api".into(),
            issuer: "https://issuer.example.com/".into(),
            audience: vec!["api".into(), "web".into()],
            identity_source: "$request.header.Authorization".into(),
        };
        let created = api.create_authorizer("api1", &config).await.expect("create");
        // The answer's audiences come back sorted.
        assert_eq!(created, Authorizer { id: "auth1".into(), authorizer_type: "JWT".into(), config });
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn routes_are_listed_over_all_pages() {
        let route = |id: &str| {
            sdk::types::Route::builder()
                .route_id(id)
                .route_key(format!("GET /{id}"))
                .target("integrations/int1")
                .build()
        };
        let first = mock!(sdk::Client::get_routes)
            .match_requests(|r| r.api_id() == Some("api1") && r.next_token().is_none())
            .then_output(move || {
                GetRoutesOutput::builder().items(route("a")).items(route("b")).next_token("p2").build()
            });
        let second = mock!(sdk::Client::get_routes)
            .match_requests(|r| r.api_id() == Some("api1") && r.next_token() == Some("p2"))
            .then_output(move || GetRoutesOutput::builder().items(route("c")).build());
        let api = adapter(mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, &[&first, &second]));
        let routes = api.routes("api1").await.expect("routes");
        let ids: Vec<&str> = routes.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(routes[0].authorization_type, "NONE", "an answer without a type is AWS's default");
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    /// moto deletes missing integrations, routes and authorizers silently; AWS answers NotFoundException.
    #[tokio::test]
    async fn deleting_what_is_missing_succeeds_and_other_errors_pass_through() {
        use sdk::operation::delete_authorizer::DeleteAuthorizerError;
        use sdk::operation::delete_integration::DeleteIntegrationError;
        use sdk::operation::delete_route::DeleteRouteError;
        let integration = mock!(sdk::Client::delete_integration)
            .then_error(|| DeleteIntegrationError::generic(error("NotFoundException")));
        let route =
            mock!(sdk::Client::delete_route).then_error(|| DeleteRouteError::generic(error("NotFoundException")));
        let authorizer = mock!(sdk::Client::delete_authorizer)
            .then_error(|| DeleteAuthorizerError::generic(error("NotFoundException")));
        let in_use = mock!(sdk::Client::delete_authorizer)
            .then_error(|| DeleteAuthorizerError::generic(error("ConflictException")));
        let api = adapter(mock_client!(
            aws_sdk_apigatewayv2,
            RuleMode::Sequential,
            [&integration, &route, &authorizer, &in_use]
        ));
        api.delete_integration("api1", "int1").await.expect("missing integration is success");
        api.delete_route("api1", "r1").await.expect("missing route is success");
        api.delete_authorizer("api1", "auth1").await.expect("missing authorizer is success");
        let err = api.delete_authorizer("api1", "auth1").await.expect_err("in use");
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Conflict, Some("ConflictException")), "{err}");
        assert_eq!((integration.num_calls(), route.num_calls(), authorizer.num_calls()), (1, 1, 1));
    }
}
