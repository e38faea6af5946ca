//! `ecsop-local`: ecsop's local default. Starts the AWS emulator (moto, through the harness), builds the
//! network an ApiDeployment needs, and runs the real `ecsop` binary against it: create, deploy, roll
//! out a new image, report, delete.
//!
//! Everything here is local: no AWS account is touched. ECS progress is simulated by the harness's
//! deployment driver, because moto never runs tasks.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use ecsop_testkit::{Account, Drive, Moto, Network};

const EXAMPLE: &str = include_str!("../../../examples/local/books-api.yaml");

#[tokio::main]
async fn main() -> ExitCode {
    match demo().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ecsop-local: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn demo() -> Result<()> {
    step("starting the local AWS emulator (moto; the first run installs it into .venv-moto/)");
    let moto = Moto::shared().await?;
    let account = moto.new_account();
    println!("   endpoint {}  account {}", account.endpoint_url(), account.id());

    step("creating what an ApiDeployment assumes exists: VPC, 2 subnets, security group, ALB + listener, cluster");
    let net = account.network("api-cluster").await?;
    println!("   vpc {}  subnets {}  sg {}", net.vpc_id, net.subnet_ids.join(","), net.security_group_id);

    let dir = workspace().join("target").join("ecsop-local");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("books-api.yaml");
    std::fs::write(&path, manifest(&net, "1.0.0"))?;
    println!("   manifest: {}", path.display());

    step("ecsop validate");
    ecsop(&account, &["validate", "-f"], &path, &[0])?;

    step("ecsop diff (an empty account: everything is to be created)");
    ecsop(&account, &["diff", "-f"], &path, &[0, 1])?;

    step("ecsop apply: the repository is created first; no image is pushed yet, so it stops at ImageNotFound");
    ecsop(&account, &["apply", "-f"], &path, &[1])?;

    step("CI pushes books-api:1.0.0 (ECR PutImage into the emulator)");
    let digest = account.push_image("books-api", "1.0.0", "books-api 1.0.0").await?;
    println!("   pushed books-api:1.0.0 {digest}");

    step("ecsop apply --wait (ECS progress is SIMULATED locally by the harness's deployment driver)");
    let first = deploy(&account, &net, &path, None).await?;

    step("CI pushes books-api:1.1.0; the manifest moves to it; ecsop apply --wait rolls it out");
    let digest = account.push_image("books-api", "1.1.0", "books-api 1.1.0").await?;
    println!("   pushed books-api:1.1.0 {digest}");
    std::fs::write(&path, manifest(&net, "1.1.0"))?;
    ecsop(&account, &["diff", "-f"], &path, &[1])?;
    deploy(&account, &net, &path, Some(&first)).await?;

    step("ecsop apply again: nothing to do, no AWS writes");
    ecsop(&account, &["apply", "-f"], &path, &[0])?;

    step("ecsop status");
    ecsop(&account, &["status", "-f"], &path, &[0])?;

    step("ecsop delete --dry-run: the teardown order (traffic first, then the service, then what it used)");
    ecsop(&account, &["delete", "--dry-run", "-f"], &path, &[0])?;

    step("ecsop delete: everything the ApiDeployment owns, in that order");
    ecsop(&account, &["delete", "--timeout", "2m", "-f"], &path, &[0])?;

    println!(
        "\n== done. Everything ran against a local emulator and was deleted again; the ECS rollouts were \
         simulated by the test harness (moto never runs tasks). The emulator stops by itself after a minute \
         without requests."
    );
    Ok(())
}

/// Run `ecsop apply --wait` while the harness plays ECS: start tasks, then complete the deployment.
async fn deploy(account: &Account, net: &Network, path: &Path, previous: Option<&str>) -> Result<String> {
    let mut child = Command::new(ecsop_binary()?)
        .args(["apply", "--wait", "--timeout", "2m", "--poll-interval", "500ms", "-f"])
        .arg(path)
        .envs(account.env())
        .stdin(Stdio::null())
        .spawn()?;
    let steps = [Drive::Progress { running: Some(1) }, Drive::Complete];
    let driven = account
        .drive_next_rollout(
            &net.cluster,
            "books-api",
            previous,
            &steps,
            Duration::from_millis(1500),
            Duration::from_secs(60),
        )
        .await?;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    if status.code() != Some(0) {
        return Err(format!("ecsop apply --wait exited with {status}").into());
    }
    Ok(driven)
}

fn manifest(net: &Network, tag: &str) -> String {
    EXAMPLE
        .replace("${CLUSTER}", &net.cluster)
        .replace("${SUBNET_A}", &net.subnet_ids[0])
        .replace("${SUBNET_B}", &net.subnet_ids[1])
        .replace("${SECURITY_GROUP}", &net.security_group_id)
        .replace("${LISTENER_ARN}", &net.listener_arn)
        .replace("${VPC_ID}", &net.vpc_id)
        .replace("tag: \"1.0.0\"", &format!("tag: \"{tag}\""))
}

fn step(what: &str) {
    println!("\n== {what}");
}

/// Run the ecsop binary against the account; fail unless it exits with one of `expected`.
fn ecsop(account: &Account, args: &[&str], path: &Path, expected: &[i32]) -> Result<()> {
    println!("$ ecsop {} {}", args.join(" "), path.display());
    let status = Command::new(ecsop_binary()?).args(args).arg(path).envs(account.env()).status()?;
    match status.code() {
        Some(code) if expected.contains(&code) => Ok(()),
        _ => Err(format!("ecsop {} exited with {status}", args.join(" ")).into()),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The `ecsop` binary next to this one (cargo builds both into the same directory).
fn ecsop_binary() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let candidate = me.with_file_name("ecsop");
    if candidate.exists() {
        return Ok(candidate);
    }
    Err("the ecsop binary is not built; run `cargo build -p ecsop` first".into())
}
