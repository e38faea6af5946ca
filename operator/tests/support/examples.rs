//! The reference examples against the in-memory AWS: an account holding what each example assumes
//! (listeners, a Cloud Map namespace, an HTTP API), and the manifests themselves.

use std::path::{Path, PathBuf};

use ecsop::api::ApiDeployment;
use ecsop::aws::ImageScan;
use ecsop_testkit::fake::FakeAws;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// A distinct image digest.
pub fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// A fresh in-memory account with the pieces the examples assume, and the manifest pointed at them.
pub fn account(manifest: &Path) -> (FakeAws, ApiDeployment) {
    let fake = FakeAws::new();
    let http = fake.create_listener();
    let https = fake.create_listener();
    let namespace = fake.create_namespace("svc.local");
    let api = fake.create_http_api();
    let listener = |id: &str| format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/api-alb/{id}");
    let text = std::fs::read_to_string(manifest)
        .expect("read manifest")
        .replace(&listener("0aaaaaaaaaaaaaa1/0aaaaaaaaaaaaa80"), &http)
        .replace(&listener("0aaaaaaaaaaaaaa1/0aaaaaaaaaaa443"), &https)
        .replace(&listener("50dc6c495c0c9188/f2f7dc8efc522ab2"), &http)
        .replace("ns-aaaaaaaaaaaaaaaa", &namespace)
        .replace("ns-abcdefgh12345678", &namespace)
        .replace("a1b2c3d4e5", &api);
    let value: serde_json::Value = serde_yaml::from_str(&text).expect("yaml");
    let resource = ecsop::api::validate_object(&value).unwrap_or_else(|e| panic!("{}: {e:?}", manifest.display()));
    (fake, resource)
}

/// Push the manifest's image (a tag, or the digest it names) so that it resolves.
pub fn push(fake: &FakeAws, resource: &ApiDeployment, n: u8) -> String {
    let image = &resource.spec.image;
    let d = image.digest.clone().unwrap_or_else(|| digest(n));
    fake.push_image(&image.repository, image.tag.as_deref().unwrap_or("pinned"), &d);
    if image.scan_gate.is_some() {
        fake.set_scan(&image.repository, &d, ImageScan::Complete(Default::default()));
    }
    d
}

/// Every manifest of the five examples, and the full-featured `tests/valid.yaml`, by name.
pub fn manifests() -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(EXAMPLES).expect("examples") {
        let dir = entry.expect("entry").path();
        let Some(example) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if !dir.is_dir() || example == "local" {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("example dir") {
            let path = file.expect("file").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                found.push((format!("{example}-{stem}"), path.clone()));
            }
        }
    }
    found.push(("valid".into(), Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid.yaml")));
    found.sort();
    found
}
