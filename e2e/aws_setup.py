"""What an ApiDeployment assumes already exists, created in the AWS emulator (moto) for e2e/kind.sh.

Runs inside the moto pod (boto3 comes with moto), against the emulator's endpoint:

    python aws_setup.py network --region us-east-1
        VPC, two subnets, a security group, an ALB with an HTTP listener, the ECS cluster `api-cluster`,
        and the ECR repository `books-api` holding image `1.0.0`. Prints KEY=value lines for the manifest.
    python aws_setup.py complete --region us-east-1 --cluster api-cluster --service books-api
        Completes the ECS deployment of the service. moto never progresses deployments; the project's moto
        harness (testkit/python/ecsop_moto.py) does it on request, as ECS would once the tasks are healthy.
"""

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.request

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
ACCOUNT = "123456789012"  # moto's default account, for any access key but ECSOPTEST<account>


def client(service, region):
    return boto3.client(service, region_name=region, endpoint_url=ENDPOINT)


def network(region):
    ec2 = client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
        for cidr, zone in (("10.0.1.0/24", "a"), ("10.0.2.0/24", "b"))
    ]
    sg = ec2.create_security_group(GroupName="ecsop-e2e", Description="API tasks", VpcId=vpc)["GroupId"]
    elb = client("elbv2", region)
    lb = elb.create_load_balancer(Name="ecsop-e2e", Subnets=subnets, SecurityGroups=[sg], Type="application")
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elb.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{
            "Type": "fixed-response",
            "FixedResponseConfig": {"StatusCode": "404", "ContentType": "application/json", "MessageBody": "{}"},
        }],
    )["Listeners"][0]["ListenerArn"]
    client("ecs", region).create_cluster(clusterName="api-cluster")
    push_image(region, "books-api", "1.0.0")
    values = {
        "CLUSTER": "api-cluster",
        "VPC_ID": vpc,
        "SUBNET_A": subnets[0],
        "SUBNET_B": subnets[1],
        "SECURITY_GROUP": sg,
        "LISTENER_ARN": listener,
    }
    for key, value in values.items():
        print(f"{key}={value}")


def push_image(region, repository, tag):
    """What a `docker push` leaves in ECR: a manifest under a tag (moto cannot receive a push)."""
    ecr = client("ecr", region)
    try:
        ecr.create_repository(repositoryName=repository)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    digest = lambda s: "sha256:" + hashlib.sha256(s.encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1024,
                   "digest": digest(f"config-{repository}-{tag}")},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 4096,
                    "digest": digest(f"layer-{repository}-{tag}")}],
    }
    try:
        ecr.put_image(repositoryName=repository, imageTag=tag, imageManifest=json.dumps(manifest))
    except ecr.exceptions.ImageAlreadyExistsException:
        pass


def complete(region, cluster, service, timeout):
    """Wait for the service ecsop creates, then complete its PRIMARY deployment."""
    body = json.dumps({"account": ACCOUNT, "region": region, "cluster": cluster, "service": service,
                       "action": "complete"}).encode()
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(f"{ENDPOINT}/_ecsop/ecs/drive", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request) as response:
                deployments = json.load(response)["deployments"]
                print(f"deployment {deployments[0]['id']} of {cluster}/{service}: {deployments[0]['rolloutState']}")
                return
        except urllib.error.HTTPError as e:
            if time.monotonic() > deadline:
                sys.exit(f"no ECS service {cluster}/{service} after {timeout}s: {e.read().decode()}")
            time.sleep(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["network", "complete"])
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--cluster", default="api-cluster")
    parser.add_argument("--service", default="books-api")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    if args.command == "network":
        network(args.region)
    else:
        complete(args.region, args.cluster, args.service, args.timeout)


if __name__ == "__main__":
    main()
