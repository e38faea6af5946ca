//! ES256 and RS256 tokens with `JWT_SIGNING_KEY`, `JWT_ISSUER` and `JWT_AUDIENCE`, checked the way an
//! API Gateway JWT authorizer checks them: from the discovery document and the JWK Set alone, with
//! jsonwebtoken and ring directly, never through the service's own verification code.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use reqwest::StatusCode;
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde_json::{Value, json};

use crate::helpers::{Backend, JWT_SECRET, TestApp, error_code, isbn13, spawn_app, spawn_app_with, status_json};

/// The issuer the test apps claim to be reached at (tests fetch `jwks_uri`'s path from the app itself).
const ISSUER: &str = "https://api.example.test";
/// The audiences the test apps accept; tokens carry the first.
const AUDIENCES: [&str; 2] = ["ecsop-api", "ecsop-api-previous"];

/// A fresh P-256 key: its PKCS#8 PEM (what `JWT_SIGNING_KEY` holds) and its public point's `x` and `y`.
struct TestKey {
    pem: String,
    x: String,
    y: String,
}

fn generate_key() -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    assert_eq!((point.len(), point[0]), (65, 4), "uncompressed SEC 1 point");
    TestKey {
        pem: pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())),
        x: URL_SAFE_NO_PAD.encode(&point[1..33]),
        y: URL_SAFE_NO_PAD.encode(&point[33..]),
    }
}

/// A fixed RSA 2048 key (ring cannot generate RSA keys): `openssl genpkey -algorithm RSA`.
const RSA_PEM: &str = include_str!("../data/rsa-test-key.pem");

async fn spawn_es256_app(backend: Backend, key: &TestKey) -> TestApp {
    spawn_signing_app(backend, key.pem.clone()).await
}

async fn spawn_signing_app(backend: Backend, pem: String) -> TestApp {
    spawn_app_with(
        backend,
        move |config| {
            config.jwt_signing_key = Some(api_service::Secret::new(pem));
            config.jwt_issuer = Some(ISSUER.to_owned());
            config.jwt_audience = AUDIENCES.iter().map(|a| a.to_string()).collect();
        },
        None,
    )
    .await
}

/// What API Gateway does with a bearer token, given only the issuer and audiences it was configured
/// with: read `{issuer}/.well-known/openid-configuration`, follow `jwks_uri`, pick the JWK named by the
/// token's `kid`, and check the ES256 signature, `iss`, `aud` and `exp` (and `nbf` if present).
/// Returns the claims, or why the token is refused.
async fn verify_like_api_gateway(
    app: &TestApp,
    issuer: &str,
    audiences: &[&str],
    token: &str,
) -> Result<Value, String> {
    verify_like_a_jwt_authorizer(app, Algorithm::ES256, issuer, audiences, token).await
}

/// The same with the one algorithm the authorizer allows (an HTTP API JWT authorizer: RS256).
async fn verify_like_a_jwt_authorizer(
    app: &TestApp,
    alg: Algorithm,
    issuer: &str,
    audiences: &[&str],
    token: &str,
) -> Result<Value, String> {
    let response = app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let discovery: Value = response.json().await.unwrap();
    assert_eq!(discovery["issuer"], issuer, "OpenID Connect Discovery §4.3: the issuer must be identical");
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let alg_name = format!("{alg:?}");
    if !discovery["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&json!(alg_name)) {
        return Err(format!("the issuer does not sign {alg_name}: {discovery}"));
    }
    // The key set is served under the issuer; fetch its path from the app under test.
    let path = jwks_uri.strip_prefix(issuer.trim_end_matches('/')).unwrap_or_else(|| panic!("{jwks_uri}"));
    assert_eq!(path, "/.well-known/jwks.json");
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: Value = response.json().await.unwrap();

    let header = decode_header(token).map_err(|e| format!("header: {e}"))?;
    if header.alg != alg {
        return Err(format!("algorithm {:?}", header.alg));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).ok_or("unknown kid")?;
    assert_eq!((&jwk["alg"], &jwk["use"]), (&json!(alg_name), &json!("sig")));
    let key = match alg {
        Algorithm::ES256 => {
            assert_eq!((&jwk["kty"], &jwk["crv"]), (&json!("EC"), &json!("P-256")));
            DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
        }
        Algorithm::RS256 => {
            assert_eq!(jwk["kty"], "RSA");
            DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
        }
        other => panic!("{other:?}"),
    }
    .map_err(|e| format!("JWK: {e}"))?;

    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = 0;
    decode::<Value>(token, &key, &validation).map(|data| data.claims).map_err(|e| e.to_string())
}

/// RFC 7638 thumbprint of an EC or RSA JWK, computed here from its required members (written in
/// lexicographic order, which serde_json keeps or sorts to).
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => json!({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}),
        _ => json!({"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}),
    }
    .to_string();
    assert!(!canonical.contains(' '));
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

/// Claims like the service's, valid for a minute.
fn claims_for(sub: &str, iss: &str, aud: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "name": "mallory", "iss": iss, "aud": aud, "iat": now, "exp": now + 60})
}

fn es256(kid: &str, claims: &Value, pem: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()).unwrap()
}

fn book() -> Value {
    json!({"title": "Signed", "author": "A", "isbn": isbn13(u64::from(uuid::Uuid::new_v4().as_fields().0))})
}

async fn login_token_is_accepted_by_an_api_gateway_style_verifier(backend: Backend) {
    let key = generate_key();
    let app = spawn_es256_app(backend, &key).await;
    let token = app.token().await;

    let claims = verify_like_api_gateway(&app, ISSUER, &AUDIENCES, &token).await.expect("API Gateway accepts it");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCES[0]);
    assert!(claims["sub"].as_str().unwrap().parse::<i64>().is_ok(), "{claims}");
    assert!(claims["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    // An authorizer configured with only the first, or only the second, audience accepts it too...
    verify_like_api_gateway(&app, ISSUER, &AUDIENCES[..1], &token).await.unwrap();
    // ...but not one configured for another audience or another issuer.
    let refused = verify_like_api_gateway(&app, ISSUER, &["another-api"], &token).await.unwrap_err();
    assert!(refused.contains("InvalidAudience"), "{refused}");

    // The published JWK is the configured key, and its kid is its RFC 7638 thumbprint.
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0]["x"].as_str().unwrap(), keys[0]["y"].as_str().unwrap()), (key.x.as_str(), key.y.as_str()));
    assert_eq!(keys[0]["kid"], thumbprint(&keys[0]));
    assert_eq!(decode_header(&token).unwrap().kid.unwrap(), keys[0]["kid"].as_str().unwrap());
    assert!(keys[0].get("d").is_none(), "the private key is never published: {jwks}");

    // And the service itself takes the token for writes.
    assert_eq!(app.create("books", Some(&token), &book()).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn es256_login_token_verifies_like_api_gateway_sqlite() {
    login_token_is_accepted_by_an_api_gateway_style_verifier(Backend::Sqlite).await;
}

#[tokio::test]
async fn es256_login_token_verifies_like_api_gateway_postgres() {
    login_token_is_accepted_by_an_api_gateway_style_verifier(Backend::Postgres).await;
}

#[tokio::test]
async fn es256_service_refuses_foreign_keys_audiences_issuers_and_hs256() {
    let key = generate_key();
    let app = spawn_es256_app(Backend::Sqlite, &key).await;
    let token = app.token().await;
    let kid = decode_header(&token).unwrap().kid.unwrap();
    let sub =
        verify_like_api_gateway(&app, ISSUER, &AUDIENCES, &token).await.unwrap()["sub"].as_str().unwrap().to_owned();

    // The forging itself works: the right key and claims are accepted, by the service and the verifier.
    let genuine = es256(&kid, &claims_for(&sub, ISSUER, AUDIENCES[1]), &key.pem);
    verify_like_api_gateway(&app, ISSUER, &AUDIENCES, &genuine).await.unwrap();
    assert_eq!(app.create("books", Some(&genuine), &book()).await.status(), StatusCode::CREATED);

    let other_key = generate_key();
    let hs256 = encode(
        &Header::new(Algorithm::HS256),
        &claims_for(&sub, ISSUER, AUDIENCES[0]),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (iat, exp) = (chrono::Utc::now().timestamp() - 120, chrono::Utc::now().timestamp() - 60);
    let forged = [
        ("another key, same kid", es256(&kid, &claims_for(&sub, ISSUER, AUDIENCES[0]), &other_key.pem)),
        ("wrong audience", es256(&kid, &claims_for(&sub, ISSUER, "another-api"), &key.pem)),
        ("wrong issuer", es256(&kid, &claims_for(&sub, "https://evil.example.test", AUDIENCES[0]), &key.pem)),
        (
            "no audience",
            es256(&kid, &json!({"sub": sub, "name": "m", "iss": ISSUER, "iat": iat, "exp": exp + 120}), &key.pem),
        ),
        (
            "expired",
            es256(
                &kid,
                &json!({"sub": sub, "name": "m", "iss": ISSUER, "aud": AUDIENCES[0], "iat": iat, "exp": exp}),
                &key.pem,
            ),
        ),
        ("HS256 with JWT_SECRET", hs256),
    ];
    for (what, token) in &forged {
        let (status, body) = status_json(app.create("books", Some(token), &book()).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(error_code(&body), "unauthorized", "{what}");
        assert!(verify_like_api_gateway(&app, ISSUER, &AUDIENCES, token).await.is_err(), "{what}");
    }
}

#[tokio::test]
async fn rs256_login_token_verifies_like_an_http_api_jwt_authorizer() {
    let app = spawn_signing_app(Backend::Sqlite, RSA_PEM.to_owned()).await;
    let token = app.token().await;
    let claims = verify_like_a_jwt_authorizer(&app, Algorithm::RS256, ISSUER, &AUDIENCES, &token).await.unwrap();
    assert_eq!((&claims["iss"], &claims["aud"]), (&json!(ISSUER), &json!(AUDIENCES[0])));
    let refused = verify_like_a_jwt_authorizer(&app, Algorithm::RS256, ISSUER, &["another-api"], &token).await;
    assert!(refused.unwrap_err().contains("InvalidAudience"));
    // An authorizer that only takes ES256 refuses it (as an RS256-only one refuses ES256 tokens).
    assert!(verify_like_api_gateway(&app, ISSUER, &AUDIENCES, &token).await.is_err());

    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!((&jwk["kty"], &jwk["alg"], &jwk["e"]), (&json!("RSA"), &json!("RS256"), &json!("AQAB")));
    assert_eq!(jwk["kid"], thumbprint(jwk));
    assert!(jwk.get("d").is_none() && jwk.get("p").is_none(), "the private key is never published: {jwks}");
    assert_eq!(app.create("books", Some(&token), &book()).await.status(), StatusCode::CREATED);

    // A bit flipped in the signature, or an ES256 token under the RSA key's kid: 401.
    let kid = decode_header(&token).unwrap().kid.unwrap();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    let tampered = format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes));
    let sub = claims["sub"].as_str().unwrap();
    let es256_token = es256(&kid, &claims_for(sub, ISSUER, AUDIENCES[0]), &generate_key().pem);
    for token in [tampered, es256_token] {
        let (status, body) = status_json(app.create("books", Some(&token), &book()).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
}

#[tokio::test]
async fn well_known_endpoints_are_404_json_without_a_signing_key() {
    // HS256 (the default), even with an issuer: the shared secret is never published.
    let app = spawn_app_with(Backend::Sqlite, |c| c.jwt_issuer = Some(ISSUER.to_owned()), None).await;
    for path in ["/.well-known/openid-configuration", "/.well-known/jwks.json"] {
        let response = app.get(path).await;
        assert_eq!(response.headers()["content-type"], "application/json", "{path}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(JWT_SECRET), "{path}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error_code(&body), "not_found", "{path}: {body}");
        assert_ne!(body["error"]["message"], "no route for this path", "{path}: routed");
    }
    // HS256 tokens carry the issuer and still work.
    let token = app.token().await;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    decode::<Value>(&token, &DecodingKey::from_secret(JWT_SECRET.as_bytes()), &validation).unwrap();
    assert_eq!(decode_header(&token).unwrap().kid, None);
    assert_eq!(app.create("books", Some(&token), &book()).await.status(), StatusCode::CREATED);

    // A signing key without an issuer: the key set is served, the discovery document is not.
    let key = generate_key();
    let pem = key.pem.clone();
    let app =
        spawn_app_with(Backend::Sqlite, move |c| c.jwt_signing_key = Some(api_service::Secret::new(pem)), None).await;
    let (status, body) = status_json(app.get("/.well-known/openid-configuration").await).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, jwks) = status_json(app.get("/.well-known/jwks.json").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["x"], key.x.as_str());
}

#[tokio::test]
async fn a_default_app_still_issues_plain_hs256_tokens() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token().await;
    let header = decode_header(&token).unwrap();
    assert_eq!((header.alg, header.kid), (Algorithm::HS256, None));
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = decode::<Value>(&token, &DecodingKey::from_secret(JWT_SECRET.as_bytes()), &validation).unwrap().claims;
    assert!(claims.get("iss").is_none() && claims.get("aud").is_none(), "{claims}");
}

#[tokio::test]
async fn a_bad_signing_key_stops_start_up_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config();
    config.database_url = api_service::Secret::new(format!("sqlite://{}", dir.path().join("api.db").display()));
    config.jwt_signing_key = Some(api_service::Secret::new(
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----",
    ));
    let error = api_service::Application::build(config, None).await.unwrap_err().to_string();
    assert!(error.contains("JWT_SIGNING_KEY"), "{error}");
    assert!(!error.contains("c2VjcmV0"), "{error}");
}
