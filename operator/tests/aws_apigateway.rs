//! The API Gateway HTTP API adapter (`SdkApiGateway`) against moto: a private integration to a Cloud Map
//! service over a VPC link, a JWT authorizer and the routes using them, on an existing API.
//!
//! moto 5.2.5 gaps met here: it has no GetAuthorizers (the harness layer answers it from moto's own
//! authorizers); it deletes missing integrations, routes and authorizers silently (AWS answers
//! NotFoundException, which the adapter treats as success: see its unit tests), so deleting twice passes
//! either way; and UpdateRoute stores the empty AuthorizerId that clears a route's authorizer as an empty
//! string, which the adapter reads as no authorizer.

use ecsop::api::DnsRecordType;
use ecsop::aws::apigateway::SdkApiGateway;
use ecsop::aws::cloudmap::SdkCloudMap;
use ecsop::aws::{
    ApiGateway, Authorizer, AuthorizerConfig, Calls, CloudMap, ErrorKind, Integration, IntegrationConfig, Outcome,
    Route, RouteConfig, Tags,
};
use ecsop_testkit::{Account, Fault, HttpApi, Moto};

mod support;
use support::fast_calls;

/// A fresh account with an HTTP API, a VPC link and two Cloud Map services (their ARNs).
struct Setup {
    account: Account,
    api: HttpApi,
    services: [String; 2],
    gateway: SdkApiGateway,
    calls: Calls,
}

async fn setup() -> Setup {
    let account = Moto::shared().await.expect("moto starts").new_account();
    let net = account.network("c1").await.expect("network");
    let api = account.http_api("books", &net).await.expect("http api");
    let namespace = account.cloud_map_namespace("internal.local", &net).await.expect("namespace");
    let config = account.sdk_config().await;
    let cloudmap = SdkCloudMap::new(&config, fast_calls());
    let mut services = Vec::new();
    for name in ["books-api", "books-api-v2"] {
        let service =
            cloudmap.create_service(&namespace, name, DnsRecordType::Srv, 60, &Tags::new()).await.expect("service");
        services.push(service.arn);
    }
    let calls = fast_calls();
    let gateway = SdkApiGateway::new(&config, calls.clone());
    Setup { account, api, services: services.try_into().expect("two services"), gateway, calls }
}

fn integration_config(s: &Setup, service: usize, description: &str) -> IntegrationConfig {
    IntegrationConfig {
        vpc_link_id: s.api.vpc_link_id.clone(),
        service_arn: s.services[service].clone(),
        description: description.into(),
    }
}

fn authorizer_config(name: &str, issuer: &str, audience: &[&str]) -> AuthorizerConfig {
    AuthorizerConfig {
        name: name.into(),
        issuer: issuer.into(),
        audience: audience.iter().map(|a| a.to_string()).collect(),
        identity_source: "$request.header.Authorization".into(),
    }
}

fn route_config(key: &str, integration: &Integration, authorizer: Option<&Authorizer>) -> RouteConfig {
    RouteConfig {
        key: key.into(),
        target: format!("integrations/{}", integration.id),
        authorizer_id: authorizer.map(|a| a.id.clone()),
    }
}

async fn sorted_routes(s: &Setup) -> Vec<Route> {
    let mut routes = s.gateway.routes(&s.api.api_id).await.expect("routes");
    routes.sort_by(|a, b| a.key.cmp(&b.key));
    routes
}

#[tokio::test]
async fn an_integration_is_created_read_back_with_every_field_updated_and_deleted() {
    let s = setup().await;
    let api = s.api.api_id.as_str();
    assert_eq!(s.gateway.integrations(api).await.expect("integrations"), vec![]);

    let created = s.gateway.create_integration(api, &integration_config(&s, 0, "ecsop:default/books-api")).await;
    let created = created.expect("create");
    let expected = Integration {
        id: created.id.clone(),
        integration_type: "HTTP_PROXY".into(),
        connection_type: Some("VPC_LINK".into()),
        connection_id: Some(s.api.vpc_link_id.clone()),
        uri: Some(s.services[0].clone()),
        method: Some("ANY".into()),
        payload_format_version: Some("1.0".into()),
        description: Some("ecsop:default/books-api".into()),
    };
    assert!(!created.id.is_empty());
    assert_eq!(created, expected);
    assert_eq!(s.gateway.integrations(api).await.expect("integrations"), vec![expected.clone()]);

    let moved = integration_config(&s, 1, "ecsop:default/books-api (v2)");
    s.gateway.update_integration(api, &created.id, &moved).await.expect("update");
    let updated = Integration {
        uri: Some(s.services[1].clone()),
        description: Some("ecsop:default/books-api (v2)".into()),
        ..expected
    };
    assert_eq!(s.gateway.integrations(api).await.expect("integrations"), vec![updated]);

    s.gateway.delete_integration(api, &created.id).await.expect("delete");
    assert_eq!(s.gateway.integrations(api).await.expect("integrations"), vec![]);
    s.gateway.delete_integration(api, &created.id).await.expect("deleting a missing integration is success");
}

#[tokio::test]
async fn an_authorizer_is_created_listed_updated_and_deleted() {
    let s = setup().await;
    let api = s.api.api_id.as_str();
    // GetAuthorizers is answered by the harness layer (moto lacks it).
    assert_eq!(s.gateway.authorizers(api).await.expect("authorizers"), vec![]);

    let config = authorizer_config("ecsop-books-api", "https://issuer.example.com/", &["api", "web"]);
    let created = s.gateway.create_authorizer(api, &config).await.expect("create");
    assert!(!created.id.is_empty());
    assert_eq!((created.authorizer_type.as_str(), &created.config), ("JWT", &config));
    assert_eq!(s.gateway.authorizers(api).await.expect("authorizers"), vec![created.clone()]);

    let changed = authorizer_config("ecsop-books-api", "https://login.example.com/", &["books"]);
    s.gateway.update_authorizer(api, &created.id, &changed).await.expect("update");
    let listed = s.gateway.authorizers(api).await.expect("authorizers");
    assert_eq!(listed, vec![Authorizer { config: changed, ..created.clone() }]);

    s.gateway.delete_authorizer(api, &created.id).await.expect("delete");
    assert_eq!(s.gateway.authorizers(api).await.expect("authorizers"), vec![]);
    s.gateway.delete_authorizer(api, &created.id).await.expect("deleting a missing authorizer is success");
}

#[tokio::test]
async fn routes_with_and_without_an_authorizer_are_created_updated_listed_and_deleted() {
    let s = setup().await;
    let api = s.api.api_id.as_str();
    let integration =
        s.gateway.create_integration(api, &integration_config(&s, 0, "ecsop")).await.expect("integration");
    let authorizer = s
        .gateway
        .create_authorizer(api, &authorizer_config("ecsop-books-api", "https://issuer.example.com/", &["api"]))
        .await
        .expect("authorizer");
    let target = format!("integrations/{}", integration.id);

    let private = s
        .gateway
        .create_route(api, &route_config("ANY /api/v1/books/{proxy+}", &integration, Some(&authorizer)))
        .await
        .expect("private route");
    let public = s
        .gateway
        .create_route(api, &route_config("GET /api/v1/books", &integration, None))
        .await
        .expect("public route");
    let expected_private = Route {
        id: private.id.clone(),
        key: "ANY /api/v1/books/{proxy+}".into(),
        target: Some(target.clone()),
        authorization_type: "JWT".into(),
        authorizer_id: Some(authorizer.id.clone()),
    };
    let expected_public = Route {
        id: public.id.clone(),
        key: "GET /api/v1/books".into(),
        target: Some(target.clone()),
        authorization_type: "NONE".into(),
        authorizer_id: None,
    };
    assert_eq!((&private, &public), (&expected_private, &expected_public));
    assert_eq!(sorted_routes(&s).await, vec![expected_private.clone(), expected_public.clone()]);

    // Swap: the private route opens (its authorizer cleared), the public one gets the authorizer.
    s.gateway
        .update_route(api, &private.id, &route_config("ANY /api/v1/books/{proxy+}", &integration, None))
        .await
        .expect("open the private route");
    s.gateway
        .update_route(api, &public.id, &route_config("GET /api/v1/books", &integration, Some(&authorizer)))
        .await
        .expect("protect the public route");
    assert_eq!(
        sorted_routes(&s).await,
        vec![
            Route { authorization_type: "NONE".into(), authorizer_id: None, ..expected_private },
            Route { authorization_type: "JWT".into(), authorizer_id: Some(authorizer.id.clone()), ..expected_public },
        ]
    );

    for route in [&private, &public] {
        s.gateway.delete_route(api, &route.id).await.expect("delete");
    }
    assert_eq!(sorted_routes(&s).await, vec![]);
    s.gateway.delete_route(api, &private.id).await.expect("deleting a missing route is success");
}

#[tokio::test]
async fn a_missing_api_is_not_found() {
    let s = setup().await;
    let integrations = s.gateway.integrations("nope123").await.expect_err("missing api");
    assert_eq!((integrations.kind, integrations.code.as_deref()), (ErrorKind::NotFound, Some("NotFoundException")));
    assert_eq!(s.gateway.routes("nope123").await.expect_err("missing api").kind, ErrorKind::NotFound);
    assert_eq!(s.gateway.authorizers("nope123").await.expect_err("missing api").kind, ErrorKind::NotFound);
    let create = s.gateway.create_integration("nope123", &integration_config(&s, 0, "ecsop")).await;
    assert_eq!(create.expect_err("missing api").kind, ErrorKind::NotFound);
    // Nothing was made in the API that does exist.
    assert_eq!(s.gateway.integrations(&s.api.api_id).await.expect("integrations"), vec![]);
}

#[tokio::test]
async fn throttling_is_retried_to_success_and_access_denied_is_not() {
    let s = setup().await;
    let api = s.api.api_id.as_str();
    let integration =
        s.gateway.create_integration(api, &integration_config(&s, 0, "ecsop")).await.expect("integration");

    s.account.clear_calls().await.expect("clear");
    let throttle = |op: &str| Fault::throttle().service("apigateway").operation(op).count(2);
    s.account.inject(throttle("CreateRoute")).await.expect("inject");
    s.account.inject(throttle("GetRoutes")).await.expect("inject");
    let route = s.gateway.create_route(api, &route_config("GET /books", &integration, None)).await;
    let route = route.expect("throttling absorbed");
    let routes = s.gateway.routes(api).await.expect("throttling absorbed");
    assert_eq!(routes, vec![route], "the throttled creates never reached moto");

    let counts = s.calls.counts();
    for op in ["CreateRoute", "GetRoutes"] {
        assert_eq!(counts.get(&("apigatewayv2", op, Outcome::Throttled)), Some(&2), "{op}: {counts:?}");
        assert_eq!(counts.get(&("apigatewayv2", op, Outcome::Ok)), Some(&1), "{op}: {counts:?}");
    }
    let log = s.account.calls().await.expect("call log");
    let throttled: Vec<&str> =
        log.iter().filter(|c| c.fault.as_deref() == Some("throttle")).map(|c| c.operation.as_str()).collect();
    assert_eq!(throttled, ["CreateRoute", "CreateRoute", "GetRoutes", "GetRoutes"], "{log:?}");
    assert_eq!(log.iter().filter(|c| c.status == Some(429)).count(), 4, "{log:?}");

    s.account.inject(Fault::access_denied().service("apigateway").operation("GetIntegrations")).await.expect("inject");
    let denied = s.gateway.integrations(api).await.expect_err("denied");
    assert_eq!(denied.kind, ErrorKind::AccessDenied, "{denied}");
    assert_eq!(s.calls.counts()[&("apigatewayv2", "GetIntegrations", Outcome::Error("access_denied"))], 1);
}

#[tokio::test]
async fn a_deployment_goes_live_on_the_stage_it_names() {
    let s = setup().await;
    let stage = s.gateway.stage(&s.api.api_id, "$default").await.expect("get stage").expect("the fixture's stage");
    assert_eq!((stage.name.as_str(), stage.auto_deploy, stage.deployment_id.as_deref()), ("$default", false, None));
    let id = s.gateway.create_deployment(&s.api.api_id, "$default", "deployed by ecsop").await.expect("deploy");
    let stage = s.gateway.stage(&s.api.api_id, "$default").await.expect("get stage").expect("stage");
    assert_eq!(stage.deployment_id.as_deref(), Some(id.as_str()));
    // A stage that does not exist is none, not an error; deploying to it is.
    assert_eq!(s.gateway.stage(&s.api.api_id, "prod").await.expect("get stage"), None);
    let err = s.gateway.create_deployment(&s.api.api_id, "prod", "x").await.expect_err("no such stage");
    assert_eq!(err.kind, ecsop::aws::ErrorKind::NotFound, "{err}");
}
