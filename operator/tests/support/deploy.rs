//! Deploying through the real `ecsop` binary against moto: an account with the network fixture and an
//! image, manifests written from a template, the binary run with the account's AWS environment, and
//! checks of what AWS holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ecsop_testkit::{Account, Drive, Moto, Network};

/// The cluster every test's network fixture creates.
pub const CLUSTER: &str = "api-cluster";

/// One isolated AWS account with the network an ApiDeployment assumes, and a scratch directory.
pub struct Env {
    /// The moto account.
    pub account: Account,
    /// VPC, subnets, security group, ALB listener, cluster.
    pub net: Network,
    /// Where manifests are written.
    pub dir: tempfile::TempDir,
    /// The Cloud Map namespace id, when a test made one.
    pub namespace: Option<String>,
}

impl Env {
    /// A fresh account with the network fixture.
    pub async fn new() -> Env {
        let account = Moto::shared().await.expect("moto starts").new_account();
        let net = account.network(CLUSTER).await.expect("network fixture");
        Env { account, net, dir: tempfile::tempdir().expect("tempdir"), namespace: None }
    }

    /// Push `repository:tag` (distinct content per tag); returns the digest.
    pub async fn push(&self, repository: &str, tag: &str) -> String {
        self.account.push_image(repository, tag, &format!("{repository}:{tag}")).await.expect("push image")
    }

    /// A manifest for `name` with image `repository:tag`; `extra` is appended under `spec:` (indented
    /// two spaces, YAML). The repository is not owned (no `ecr:`) unless `extra` says so.
    pub fn manifest(&self, name: &str, repository: &str, tag: &str, extra: &str) -> String {
        format!(
            "apiVersion: ecsop.io/v1alpha1
kind: ApiDeployment
metadata:
  name: {name}
  namespace: test
spec:
  cluster: {CLUSTER}
  image:
    repository: {repository}
    tag: \"{tag}\"
  container:
    port: 8080
    cpu: 256
    memory: 512
    env: {{RUST_LOG: info}}
  service:
    replicas: 2
    subnets: [{a}, {b}]
    securityGroups: [{sg}]
    rollout:
      progressDeadlineSeconds: 600
  loadBalancer:
    listenerArn: {listener}
    vpcId: {vpc}
    priority: {priority}
    paths: [\"/{name}*\"]
  revisionHistoryLimit: 3
{extra}",
            a = self.net.subnet_ids[0],
            b = self.net.subnet_ids[1],
            sg = self.net.security_group_id,
            listener = self.net.listener_arn,
            vpc = self.net.vpc_id,
            priority = 1 + (name.bytes().map(u32::from).sum::<u32>() % 40000),
        )
    }

    /// An HTTPS listener on the fixture's load balancer.
    pub async fn https_listener(&self) -> String {
        self.account.https_listener(&self.net).await.expect("https listener")
    }

    /// Write `yaml` to `file` in the scratch directory.
    pub fn write(&self, file: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, yaml).expect("write manifest");
        path
    }

    /// Run `ecsop <args>` with this account's AWS environment; waits for it.
    pub fn ecsop(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ecsop")
    }

    /// The `ecsop` command with this account's AWS environment, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ecsop"));
        c.args(args).envs(self.account.env()).env("RUST_LOG", "warn").stdin(Stdio::null());
        c
    }

    /// Run `ecsop apply --wait` on `path` while the harness plays ECS with `steps` on the next new
    /// deployment (of a revision other than `previous`). Returns ecsop's output and the driven revision.
    pub async fn apply_and_drive(
        &self,
        path: &Path,
        service: &str,
        previous: Option<&str>,
        steps: &[Drive],
        extra_args: &[&str],
    ) -> (Output, Option<String>) {
        self.apply_and_drive_in(CLUSTER, path, service, previous, steps, extra_args).await
    }

    /// [`Env::apply_and_drive`] for a service in another cluster.
    pub async fn apply_and_drive_in(
        &self,
        cluster: &str,
        path: &Path,
        service: &str,
        previous: Option<&str>,
        steps: &[Drive],
        extra_args: &[&str],
    ) -> (Output, Option<String>) {
        let mut args = vec!["apply", "--wait", "--poll-interval", "200ms", "-f", path.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra_args);
        let child = self.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ecsop");
        let driven = self
            .account
            .drive_next_rollout(cluster, service, previous, steps, Duration::from_millis(300), Duration::from_secs(60))
            .await
            .ok();
        let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
        (output, driven)
    }

    /// An SDK config for direct checks.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        self.account.sdk_config().await
    }

    /// The engine's own AWS clients on this account, for checks in ecsop's types.
    pub async fn clients(&self) -> ecsop::aws::Clients {
        ecsop::aws::Clients::from_sdk(&self.sdk().await, ecsop::aws::Calls::default())
    }

    /// Write calls the account received since the last [`Account::clear_calls`].
    pub async fn writes(&self) -> Vec<String> {
        let calls = self.account.calls().await.expect("call log");
        calls.into_iter().filter(|c| c.is_write()).map(|c| c.operation).collect()
    }
}

/// stdout and stderr of a run, for assertion messages.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The drive steps of a rollout that succeeds.
pub fn complete() -> Vec<Drive> {
    vec![Drive::Progress { running: Some(1) }, Drive::Complete]
}

/// The drive steps of a blueGreen, canary or linear rollout that succeeds: each step of ECS's lifecycle
/// up to the bake (a step past it changes nothing), its bake time passed on the test clock, then
/// completion. A rolling one takes them too (the clock changes nothing for it).
pub fn through_lifecycle() -> Vec<Drive> {
    // Each step waits out its bake on the layer's test clock first.
    let mut steps = Vec::new();
    for _ in 0..6 {
        steps.push(Drive::Advance { seconds: 3600 });
        steps.push(Drive::Progress { running: None });
    }
    steps.push(Drive::Advance { seconds: 3600 });
    steps.push(Drive::Complete);
    steps
}
