//! Images in the emulator's ECR and a rollout driver that follows the service ecsop updates.
//!
//! moto cannot receive a `docker push`, so an image is "pushed" with ECR's PutImage and a small
//! Docker v2 manifest, which is what a registry stores after a push.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{Account, Drive, Error, Result};

impl Account {
    /// Put an image tagged `tag` into repository `repository` (created if missing); returns the
    /// digest ECR assigned. `content` makes different images differ.
    pub async fn push_image(&self, repository: &str, tag: &str, content: &str) -> Result<String> {
        let ecr = aws_sdk_ecr::Client::new(&self.sdk_config().await);
        if let Err(e) = ecr.create_repository().repository_name(repository).send().await {
            let exists = e.as_service_error().is_some_and(|s| s.is_repository_already_exists_exception());
            if !exists {
                return Err(Error::Fixture { step: "CreateRepository", message: e.to_string() });
            }
        }
        let layer = sha256_hex(content);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1024,
                "digest": format!("sha256:{}", sha256_hex(&format!("config-{content}")))
            },
            "layers": [{
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 4096,
                "digest": format!("sha256:{layer}")
            }]
        })
        .to_string();
        let out = ecr
            .put_image()
            .repository_name(repository)
            .image_tag(tag)
            .image_manifest(manifest)
            .send()
            .await
            .map_err(|e| Error::Fixture { step: "PutImage", message: format!("{e:?}") })?;
        out.image()
            .and_then(|i| i.image_id())
            .and_then(|id| id.image_digest())
            .map(str::to_string)
            .ok_or_else(|| Error::Fixture { step: "PutImage", message: "no digest returned".into() })
    }

    /// Set what ECR's scanner reports for an image: `status` (`COMPLETE`, `IN_PROGRESS`, `FAILED`) and
    /// the finding counts by severity (`[("HIGH", 2)]`).
    pub async fn set_scan(&self, repository: &str, digest: &str, status: &str, counts: &[(&str, i32)]) -> Result<()> {
        let counts: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(k, v)| ((*k).to_string(), serde_json::json!(v))).collect();
        let body = serde_json::json!({
            "account": self.id(),
            "region": self.region(),
            "repository": repository,
            "digest": digest,
            "status": status,
            "counts": counts,
        });
        let _: serde_json::Value = self.control(reqwest::Method::POST, "/_ecsop/ecr/scan", Some(body)).await?;
        Ok(())
    }

    /// The deployments of a service as the harness holds them (PRIMARY first).
    pub async fn deployments(&self, cluster: &str, service: &str) -> Result<Vec<DeploymentView>> {
        #[derive(Deserialize)]
        struct View {
            deployments: Vec<DeploymentView>,
        }
        let url = format!(
            "{}/_ecsop/ecs/service?account={}&region={}&cluster={cluster}&service={service}",
            self.endpoint_url(),
            self.id(),
            self.region()
        );
        let response = reqwest::get(&url).await.map_err(|e| control("service", e))?;
        if !response.status().is_success() {
            return Ok(Vec::new());
        }
        let view: View = response.json().await.map_err(|e| control("service", e))?;
        Ok(view.deployments)
    }

    /// Wait (up to `timeout`) for the service to have a PRIMARY deployment still rolling out, of a task
    /// definition other than `previous` (any, when `None`), then take `steps` on it with `pause` between
    /// them. Returns the task definition that was driven. This is what ECS would do after ecsop's
    /// UpdateService. A deployment that already finished is never driven again: it is the one before
    /// the awaited UpdateService, not its result.
    pub async fn drive_next_rollout(
        &self,
        cluster: &str,
        service: &str,
        previous: Option<&str>,
        steps: &[Drive],
        pause: Duration,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let task_definition = loop {
            let deployments = self.deployments(cluster, service).await?;
            let finished = |d: &&DeploymentView| matches!(d.rollout_state.as_deref(), Some("COMPLETED" | "FAILED"));
            let primary = deployments.iter().find(|d| d.status == "PRIMARY").filter(|d| !finished(d));
            if let Some(p) = primary
                && Some(p.task_definition.as_str()) != previous
            {
                break p.task_definition.clone();
            }
            if Instant::now() > deadline {
                return Err(Error::Control {
                    what: "drive_next_rollout".into(),
                    message: format!("no new deployment of {cluster}/{service} within {timeout:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for step in steps {
            tokio::time::sleep(pause).await;
            self.drive(cluster, service, step.clone()).await?;
        }
        Ok(task_definition)
    }
}

/// A deployment as the harness reports it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    /// The id.
    pub id: String,
    /// PRIMARY or ACTIVE.
    pub status: String,
    /// Its task definition ARN.
    pub task_definition: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: Option<String>,
}

fn control(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Control { what: what.into(), message: e.to_string() }
}

/// SHA-256 in hex, without a crypto dependency in the harness: a tiny implementation is enough for
/// making distinct, well-formed layer digests.
fn sha256_hex(input: &str) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut data = input.as_bytes().to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in data.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7].wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), v[0], v[1], v[2], v[3].wrapping_add(t1), v[4], v[5], v[6]];
        }
        for (x, y) in h.iter_mut().zip(v) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(super::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(super::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
