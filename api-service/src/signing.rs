//! Asymmetric token signing (`JWT_SIGNING_KEY`): the private key is parsed and checked once, at
//! start-up, by the library that signs (ring, under jsonwebtoken), and its public half is published
//! as a JSON Web Key (RFC 7517) whose `kid` is its RFC 7638 thumbprint.
//!
//! An EC P-256 key signs ES256; an RSA key (2048 to 8192 bits) signs RS256, which is what API
//! Gateway's HTTP API JWT authorizers verify ("only RSA-based algorithms are supported").

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::{
    digest::{SHA256, digest},
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents},
};
use serde_json::{Value, json};

/// A private signing key with its public JWK. `Debug` shows the algorithm and `kid` only.
pub struct SigningKey {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("algorithm", &self.algorithm).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) of an EC P-256 key (ES256) or
    /// an RSA key of 2048 to 8192 bits (RS256). Literal `\n` sequences count as line breaks, for
    /// environments that cannot hold multi-line values. Errors never quote the key.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let text = text.trim().replace("\\n", "\n");
        let pem = pem::parse(text.as_bytes()).map_err(|e| format!("not a PEM document ({e})"))?;
        match pem.tag() {
            "PRIVATE KEY" => {}
            "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                return Err(format!(
                    "a `{}` is not accepted: convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
                    pem.tag()
                ));
            }
            "ENCRYPTED PRIVATE KEY" => return Err("encrypted private keys are not supported".into()),
            other => return Err(format!("expected a PKCS#8 `PRIVATE KEY` PEM block, found `{other}`")),
        }
        let der = pem.contents();
        let ec_error = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new()) {
            Ok(pair) => return Self::es256(der, &pair),
            Err(e) => e,
        };
        match RsaKeyPair::from_pkcs8(der) {
            Ok(pair) => Self::rs256(&text, &pair),
            Err(rsa_error) => Err(format!(
                "not an EC P-256 or RSA (2048 to 8192 bits) PKCS#8 private key (as EC: {ec_error}; as RSA: {rsa_error})"
            )),
        }
    }

    fn es256(der: &[u8], pair: &EcdsaKeyPair) -> Result<Self, String> {
        // SEC 1 uncompressed point: 0x04 || x || y, 32 bytes each.
        let (x, y) = pair.public_key().as_ref()[1..].split_at(32);
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        // RFC 7638 §3.2: the required members only, in lexicographic order, without white space.
        let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| format!("public key: {e}"))?;
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
        Ok(Self { algorithm: Algorithm::ES256, encoding: EncodingKey::from_ec_der(der), decoding, kid, jwk })
    }

    fn rs256(pem_text: &str, pair: &RsaKeyPair) -> Result<Self, String> {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let (n, e) = (URL_SAFE_NO_PAD.encode(&public.n), URL_SAFE_NO_PAD.encode(&public.e));
        let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        // jsonwebtoken signs RSA with the PKCS#1 key inside the PKCS#8 document; let it unwrap it.
        let encoding = EncodingKey::from_rsa_pem(pem_text.as_bytes()).map_err(|e| format!("private key: {e}"))?;
        let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| format!("public key: {e}"))?;
        let jwk = json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "use": "sig", "alg": "RS256"});
        Ok(Self { algorithm: Algorithm::RS256, encoding, decoding, kid, jwk })
    }

    /// The JWS algorithm (`ES256` or `RS256`).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public key, base64url.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// SHA-256 of the canonical JWK members, base64url without padding (RFC 7638 §3).
fn thumbprint(canonical_members: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical_members.as_bytes()))
}

/// A test-only P-256 key made with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`;
/// the expected `x`, `y` and thumbprint in the tests were computed from it by Python's `cryptography`
/// and `hashlib`, not by this code.
#[cfg(test)]
pub(crate) const TEST_EC_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHK8rj+kKbfeIObOZ
ANHLe6HR1XI5vpxky3ndKU0ovOKhRANCAAQHuwF8JuczGE1qioeWa6eaatwuB9hH
YxwMy0lKLu8fa2xDrp1WYg7nHACxY8vzawWMyB4kPPbaAcS/5N4JYrMw
-----END PRIVATE KEY-----
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openssl_p256_key_gives_the_expected_jwk_and_thumbprint() {
        let key = SigningKey::from_pem(TEST_EC_PEM).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        assert_eq!(key.kid(), "knsmIZ0x5NhFvz9h4Ys8trDwaApNqI7ewyldSdRqn30");
        assert_eq!(
            key.public_jwk(),
            &json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
                "x": "B7sBfCbnMxhNaoqHlmunmmrcLgfYR2McDMtJSi7vH2s",
                "y": "bEOunVZiDuccALFjy_NrBYzIHiQ89toBxL_k3gliszA",
                "kid": "knsmIZ0x5NhFvz9h4Ys8trDwaApNqI7ewyldSdRqn30"
            })
        );
        // The same key with escaped line breaks (one-line environment values).
        let escaped = SigningKey::from_pem(&TEST_EC_PEM.replace('\n', "\\n")).unwrap();
        assert_eq!(escaped.kid(), key.kid());
    }

    #[test]
    fn an_openssl_rsa_key_gives_the_expected_jwk_and_thumbprint() {
        // `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`; expected values from Python.
        let key = SigningKey::from_pem(include_str!("../tests/data/rsa-test-key.pem")).unwrap();
        assert_eq!(key.algorithm(), Algorithm::RS256);
        assert_eq!(key.kid(), "5mHrtF183dr4cp151mV1mcpkg3eXugCQ9f8MAEvjQQQ");
        let jwk = key.public_jwk();
        assert_eq!(
            (&jwk["kty"], &jwk["e"], &jwk["alg"], &jwk["use"]),
            (&json!("RSA"), &json!("AQAB"), &json!("RS256"), &json!("sig"))
        );
        assert!(jwk["n"].as_str().unwrap().starts_with("wlSpjHVtHzgXGxITt9YlD4jBe7U5l2_hvZm8q8ASJdtKPWWN9VkB"));
        assert!(jwk["n"].as_str().unwrap().ends_with("TSFQnoDDM7JH4KDRDGbpzi_i1MFyQ"));
        assert_eq!(jwk["kid"], key.kid());
        assert!(jwk.get("d").is_none() && jwk.get("p").is_none(), "{jwk}");
    }

    #[test]
    fn other_keys_are_rejected_without_quoting_them() {
        // P-384 (openssl genpkey ... ec_paramgen_curve:P-384): right format, wrong curve.
        let p384 = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDA8uOszzFnwabLnZk3A
MFwh9c9pHm1Xz6RlCtL4toFZnG/IT7RJPKgM+P/XRnFUWS2hZANiAASs8bMppvwg
zBWU5ruzMveM1BIRWvBHZAVaE8uJgR3oeAiXenloiBp9WRKOkkEuJEf8qLfMsEv8
DdIiaa0pXE0pbK9xXpcM7NrY5Zymi0n4Bg94b+LC1rnJAJmnIoPDyw8=
-----END PRIVATE KEY-----";
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----";
        let public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQ==\n-----END PUBLIC KEY-----";
        for (pem, expected) in [
            (p384, "not an EC P-256 or RSA"),
            (sec1, "openssl pkcs8 -topk8"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "openssl pkcs8 -topk8"),
            (public, "found `PUBLIC KEY`"),
            ("hunter2", "not a PEM document"),
            ("", "not a PEM document"),
        ] {
            let error = SigningKey::from_pem(pem).unwrap_err();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("MIG") && !error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let shown = format!("{:?}", SigningKey::from_pem(TEST_EC_PEM).unwrap());
        assert!(shown.contains("ES256") && shown.contains("knsmIZ0x"), "{shown}");
        assert!(!shown.contains("MIGHAgEA") && !shown.contains("B7sBfCbn"), "{shown}");
    }
}
