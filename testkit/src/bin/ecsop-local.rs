//! `ecsop-local`: ecsop's local default. Starts the AWS emulator (moto, through the harness), builds the
//! network an ApiDeployment needs, and runs the `ecsop` binary against it.
//!
//! Everything here is local: no AWS account is touched. ECS progress is simulated by the harness's
//! deployment driver, because moto never runs tasks.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use ecsop_testkit::{Drive, Moto};

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

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    println!("== starting the local AWS emulator (moto; first run installs it into .venv-moto/)");
    let moto = Moto::shared().await?;
    let account = moto.new_account();
    println!("   endpoint {}  account {}", account.endpoint_url(), account.id());

    println!(
        "== creating the network an ApiDeployment assumes (VPC, 2 subnets, security group, ALB + listener, cluster)"
    );
    let net = account.network("api-cluster").await?;
    println!("   vpc {}  subnets {}  sg {}", net.vpc_id, net.subnet_ids.join(","), net.security_group_id);
    println!("   listener {}", net.listener_arn);

    let manifest = EXAMPLE
        .replace("${CLUSTER}", &net.cluster)
        .replace("${SUBNET_A}", &net.subnet_ids[0])
        .replace("${SUBNET_B}", &net.subnet_ids[1])
        .replace("${SECURITY_GROUP}", &net.security_group_id)
        .replace("${LISTENER_ARN}", &net.listener_arn)
        .replace("${VPC_ID}", &net.vpc_id);
    let dir = workspace().join("target").join("ecsop-local");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("books-api.yaml");
    std::fs::write(&path, manifest)?;
    println!("== manifest written to {}", path.display());

    println!("== ecsop validate -f {}", path.display());
    let status = Command::new(ecsop_binary()?).arg("validate").arg("-f").arg(&path).envs(account.env()).status()?;
    if !status.success() {
        return Err(format!("ecsop validate failed with {status}").into());
    }

    println!("== the harness's ECS deployment driver (simulated locally: moto never runs tasks)");
    let ecs = aws_sdk_ecs::Client::new(&account.sdk_config().await);
    let td = ecs
        .register_task_definition()
        .family("demo-books-api")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder().name("api").image("books-api:1.0.0").build(),
        )
        .send()
        .await?;
    let td_arn = td.task_definition().and_then(|t| t.task_definition_arn()).unwrap_or_default().to_string();
    ecs.create_service()
        .cluster(&net.cluster)
        .service_name("books-api")
        .task_definition(&td_arn)
        .desired_count(2)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(
            aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(net.subnet_ids.clone()))
                        .security_groups(&net.security_group_id)
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;
    for step in [Drive::Progress { running: Some(1) }, Drive::Complete] {
        let after = account.drive(&net.cluster, "books-api", step).await?;
        let d = &after["deployments"][0];
        println!(
            "   deployment {} {} running {}/{}",
            d["id"].as_str().unwrap_or("?"),
            d["rolloutState"].as_str().unwrap_or("?"),
            d["runningCount"],
            d["desiredCount"]
        );
    }
    println!("== done. Next: `ecsop apply -f {}` once the engine lands (see README).", path.display());
    Ok(())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The `ecsop` binary next to this one (cargo builds both into the same directory).
fn ecsop_binary() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let me = std::env::current_exe()?;
    let candidate = me.with_file_name("ecsop");
    if candidate.exists() {
        return Ok(candidate);
    }
    Err("the ecsop binary is not built; run `cargo build -p ecsop` first".into())
}
