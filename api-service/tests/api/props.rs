//! Property tests through `oneshot` on the router (no socket): arbitrary query strings, JSON bodies
//! and multipart bodies never produce a 5xx or a panic, and errors always use the JSON error shape.

use api_service::{AppState, Secret, router};
use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Method, Request, header},
};
use proptest::prelude::*;
use tower::ServiceExt;

use crate::helpers::{JWT_SECRET, test_config};

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    token: String,
    /// The service's own OpenAPI document.
    openapi: serde_json::Value,
    _dir: tempfile::TempDir,
}

/// The statuses the OpenAPI document allows for `method` on `path` (a concrete path, matched against its
/// templates): a documented operation's responses; 405 for an undocumented method on a documented
/// path; 404 for an undocumented path.
fn documented(openapi: &serde_json::Value, method: &Method, path: &str) -> Vec<String> {
    let paths = openapi["paths"].as_object().expect("paths");
    let matches = |template: &str| {
        let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
    };
    match paths.iter().find(|(template, _)| matches(template)) {
        None => vec!["404".into()],
        Some((_, item)) => match item.get(method.as_str().to_ascii_lowercase()) {
            Some(operation) => operation["responses"].as_object().expect("responses").keys().cloned().collect(),
            None => vec!["405".into()],
        },
    }
}

fn harness() -> &'static Harness {
    static HARNESS: std::sync::OnceLock<Harness> = std::sync::OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config();
        config.database_url = Secret::new(format!("sqlite://{}", dir.path().join("props.db").display()));
        // A small cap keeps arbitrary numbers cheap; uploads go to a real bucket on moto, so a
        // well-formed multipart body is stored (201) and a malformed one is refused (4xx).
        config.factorial_max = 2_000;
        config.upload_max_bytes = 4096;
        let state = runtime.block_on(async {
            let moto = ecsop_testkit::Moto::shared().await.expect("moto server (ecsop-testkit) starts");
            let account = moto.new_account();
            let sdk_config = account.sdk_config().await;
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(true).build(),
            );
            // Bucket names are global in S3 (and in moto, whose server outlives one test run).
            let bucket = format!("props-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            s3.create_bucket().bucket(&bucket).send().await.expect("bucket created");
            config.upload_bucket = Some(bucket);
            AppState::new(config, Some(sdk_config)).await.unwrap()
        });
        let keys = api_service::auth::JwtKeys::new(JWT_SECRET.as_bytes(), 3600);
        let token = keys.issue(1, "prop").unwrap().access_token;
        let router = router(state);
        let openapi = runtime.block_on(async {
            let request = Request::builder().uri("/openapi.json").body(Body::empty()).unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap()).expect("OpenAPI JSON")
        });
        Harness { router, runtime, token, openapi, _dir: dir }
    })
}

fn check(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    auth: bool,
) -> Result<(), TestCaseError> {
    let h = harness();
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    if auth {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", h.token));
    }
    let Ok(request) = builder.body(Body::from(body)) else {
        // Not a valid HTTP request at all (e.g. an unparseable URI): nothing to send.
        return Ok(());
    };
    let (status, bytes) = h.runtime.block_on(async {
        let response = h.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (status, to_bytes(response.into_body(), usize::MAX).await.unwrap())
    });
    prop_assert!(!status.is_server_error(), "{method} {uri} -> {status}: {}", String::from_utf8_lossy(&bytes));
    // Every answer is one the OpenAPI document describes for that operation.
    let path = uri.split('?').next().unwrap_or(uri);
    let allowed = documented(&h.openapi, &method, path);
    prop_assert!(
        allowed.iter().any(|s| s == status.as_str()),
        "{method} {uri} -> {status}, which the OpenAPI document does not describe ({allowed:?}): {}",
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        let body: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{method} {uri} -> {status}: not JSON ({e})")))?;
        prop_assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    }
    Ok(())
}

fn query_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "number=[0-9]{0,6}",
        "number=-?[0-9.e+]{0,8}",
        "limit=[-0-9a-z]{0,4}&offset=[-0-9]{0,12}",
        "(%[0-9A-Fa-f]{2}|[a-z=&]){0,20}",
        proptest::collection::vec(any::<u8>(), 0..30)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect::<String>()),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        "\\PC{0,30}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("title".to_owned()),
                    Just("author".to_owned()),
                    Just("isbn".to_owned()),
                    Just("published_year".to_owned()),
                    Just("year".to_owned()),
                    Just("director".to_owned()),
                    Just("genre".to_owned()),
                    Just("username".to_owned()),
                    Just("email".to_owned()),
                    Just("password".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        proptest::collection::vec(any::<u8>(), 0..200),
        "[{}\\[\\]\":, a-z0-9]{0,60}".prop_map(String::into_bytes),
    ]
}

fn multipart_body() -> impl Strategy<Value = (String, Vec<u8>)> {
    let boundary = "[A-Za-z0-9]{1,20}";
    let part = ("[a-z\"]{0,6}", proptest::option::of("[ -~]{0,12}"), proptest::collection::vec(any::<u8>(), 0..64));
    (boundary, proptest::collection::vec(part, 0..3), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..20))
        .prop_map(|(boundary, parts, terminated, junk)| {
            let mut body = junk;
            for (name, filename, data) in parts {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
                );
                if let Some(f) = filename {
                    body.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
                }
                body.extend_from_slice(b"\r\n\r\n");
                body.extend_from_slice(&data);
                body.extend_from_slice(b"\r\n");
            }
            if terminated {
                body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            }
            (format!("multipart/form-data; boundary={boundary}"), body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_query_strings_never_fail_the_server(
        query in query_string(),
        path in prop_oneof![
            Just("/api/v1/factorial"), Just("/api/v1/books"), Just("/api/v1/movies"),
            Just("/api/v1/books/1"), Just("/readyz"), Just("/healthz"),
        ],
    ) {
        check(Method::GET, &format!("{path}?{query}"), None, Vec::new(), false)?;
    }

    #[test]
    fn arbitrary_json_bodies_never_fail_the_server(
        body in json_body(),
        target in prop_oneof![
            Just((Method::POST, "/api/v1/books")), Just((Method::PUT, "/api/v1/books/1")),
            Just((Method::POST, "/api/v1/movies")), Just((Method::PUT, "/api/v1/movies/1")),
            Just((Method::POST, "/api/v1/users")), Just((Method::POST, "/api/v1/auth/login")),
        ],
        content_type in prop_oneof![Just(Some("application/json")), Just(None), Just(Some("text/plain"))],
        auth in any::<bool>(),
    ) {
        check(target.0, target.1, content_type, body, auth)?;
    }

    #[test]
    fn arbitrary_multipart_bodies_never_fail_the_server((content_type, body) in multipart_body(), auth in any::<bool>()) {
        check(Method::POST, "/api/v1/uploads", Some(&content_type), body, auth)?;
    }

    #[test]
    fn arbitrary_paths_never_fail_the_server(path in "/[ -~&&[^?#]]{0,40}", method in prop_oneof![
        Just(Method::GET), Just(Method::POST), Just(Method::PUT), Just(Method::DELETE), Just(Method::PATCH)
    ]) {
        check(method, &path.replace(' ', "%20"), None, Vec::new(), true)?;
    }
}
