#!/usr/bin/env bash
# End-to-end test of the operator in a real Kubernetes cluster (kind): build the image, install the Helm
# chart, apply an ApiDeployment and wait for `kubectl wait --for=condition=Ready`. See e2e/README.md.
#
# Needs: docker, kind, kubectl, helm (3.8+). Run from anywhere:
#   e2e/kind.sh                  # against moto in the cluster (no AWS account needed)
#   ECSOP_E2E_AWS=real ECSOP_E2E_MANIFEST=my-api.yaml AWS_REGION=eu-west-1 \
#     AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... [AWS_SESSION_TOKEN=...] e2e/kind.sh
#
# Settings (environment):
#   ECSOP_E2E_CLUSTER   kind cluster name (default ecsop-e2e; reused if it exists, else created)
#   ECSOP_E2E_IMAGE     operator image (default ecsop:e2e)
#   ECSOP_E2E_BUILD     1 (default): docker build -f operator/Dockerfile; 0: use ECSOP_E2E_IMAGE as it is
#                       (pulled by docker if missing), then `kind load` it
#   ECSOP_E2E_AWS       moto (default) or real
#   ECSOP_E2E_MANIFEST  with real AWS: the ApiDeployment to apply (its cluster, subnets, ... must exist)
#   ECSOP_E2E_TIMEOUT   how long to wait for Ready (default 300s; real ECS rollouts take minutes)
#   ECSOP_E2E_KEEP      1: leave the ApiDeployment and the cluster in place at the end
#   AWS_REGION          the operator's default region (default us-east-1)
set -euo pipefail

cd "$(dirname "$0")/.."
CLUSTER=${ECSOP_E2E_CLUSTER:-ecsop-e2e}
IMAGE=${ECSOP_E2E_IMAGE:-ecsop:e2e}
BUILD=${ECSOP_E2E_BUILD:-1}
AWS_MODE=${ECSOP_E2E_AWS:-moto}
TIMEOUT=${ECSOP_E2E_TIMEOUT:-300s}
KEEP=${ECSOP_E2E_KEEP:-0}
REGION=${AWS_REGION:-us-east-1}
NS=ecsop-system
CONTEXT=kind-$CLUSTER

step() { printf '\n== %s\n' "$*"; }
die() { printf 'e2e: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (needs docker, kind, kubectl, helm)"
done
case "$IMAGE" in *:*) ;; *) die "ECSOP_E2E_IMAGE needs a tag (repository:tag), not $IMAGE" ;; esac
case "$AWS_MODE" in
  moto) ;;
  real)
    if [ -z "${AWS_ACCESS_KEY_ID:-}" ] || [ -z "${AWS_SECRET_ACCESS_KEY:-}" ]; then
      die "ECSOP_E2E_AWS=real needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    fi
    [ -f "${ECSOP_E2E_MANIFEST:-}" ] || die "ECSOP_E2E_AWS=real needs ECSOP_E2E_MANIFEST=<an ApiDeployment file>"
    ;;
  *) die "ECSOP_E2E_AWS must be moto or real, not $AWS_MODE" ;;
esac

manifest=$(mktemp)
# On failure: what the operator and the ApiDeployments say.
finish() {
  status=$?
  rm -f "$manifest"
  if [ "$status" -ne 0 ]; then
    printf '\n== FAILED (exit %s); state of the cluster:\n' "$status" >&2
    k get apideployments -A -o wide >&2 || true
    k get apideployments -A -o yaml 2>/dev/null | sed -n '/^  status:/,/^- apiVersion/p' >&2 || true
    k -n "$NS" get pods -o wide >&2 || true
    k -n "$NS" logs deployment/ecsop --tail=100 >&2 || true
    k get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -20 >&2 || true
  fi
}
trap finish EXIT

step "kind cluster $CLUSTER"
created=0
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "reusing it"
else
  kind create cluster --name "$CLUSTER" --wait 120s
  created=1
fi

step "operator image $IMAGE"
if [ "$BUILD" = 1 ]; then
  DOCKER_BUILDKIT=1 docker build -f operator/Dockerfile -t "$IMAGE" .
elif ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  docker pull "$IMAGE"
fi
kind load docker-image "$IMAGE" --name "$CLUSTER"

k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
k create namespace e2e --dry-run=client -o yaml | k apply -f -

if [ "$AWS_MODE" = moto ]; then
  step "AWS emulator (moto) in $NS"
  k -n "$NS" create configmap ecsop-moto \
    --from-file=testkit/python/ecsop_moto.py \
    --from-file=testkit/python/requirements.txt \
    --from-file=e2e/aws_setup.py \
    --dry-run=client -o yaml | k apply -f -
  k -n "$NS" apply -f e2e/moto.yaml
  k -n "$NS" rollout restart deployment/moto >/dev/null  # fresh state on a reused cluster
  k -n "$NS" rollout status deployment/moto --timeout=300s
  endpoint="http://moto.$NS.svc:5000"
  key_id=testing secret=testing token=

  step "VPC, subnets, security group, ALB listener, ECS cluster, ECR image (in moto)"
  ids=$(k -n "$NS" exec deployment/moto -- python /ecsop/aws_setup.py network --region "$REGION")
  echo "$ids"
  text=$(cat e2e/apideployment.yaml)
  while IFS='=' read -r key value; do
    [ -n "$key" ] || continue
    text=${text//"\${$key}"/$value}
  done <<<"$ids"
  printf '%s\n' "$text" >"$manifest"
  # shellcheck disable=SC2016 # a literal ${...} placeholder
  if grep -q '\${[A-Z_]*}' "$manifest"; then
    die "unfilled placeholders in the manifest: $(grep -o '\${[A-Z_]*}' "$manifest" | sort -u | tr '\n' ' ')"
  fi
else
  endpoint=""
  key_id=$AWS_ACCESS_KEY_ID secret=$AWS_SECRET_ACCESS_KEY token=${AWS_SESSION_TOKEN:-}
  cp "$ECSOP_E2E_MANIFEST" "$manifest"
fi

step "AWS credentials Secret"
secret_args=(--from-literal=AWS_ACCESS_KEY_ID="$key_id" --from-literal=AWS_SECRET_ACCESS_KEY="$secret")
[ -z "$token" ] || secret_args+=(--from-literal=AWS_SESSION_TOKEN="$token")
k -n "$NS" create secret generic ecsop-aws "${secret_args[@]}" --dry-run=client -o yaml | k apply -f - >/dev/null

step "helm install charts/ecsop (CRD from the chart's crds/)"
# Helm installs crds/ on first install only: on a reused cluster, bring the CRD up to date by hand.
if k get crd apideployments.ecsop.io >/dev/null 2>&1; then
  k apply --server-side --force-conflicts -f charts/ecsop/crds/apideployments.ecsop.io.yaml
fi
helm --kube-context "$CONTEXT" upgrade --install ecsop charts/ecsop --namespace "$NS" \
  --set fullnameOverride=ecsop \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=IfNotPresent \
  --set region="$REGION" \
  --set aws.credentialsSecret=ecsop-aws \
  --set aws.endpointUrl="$endpoint" \
  --set rolloutPoll=3s --set resync=1m \
  --set logLevel='info\,ecsop=debug' --set logFormat=text \
  --wait --timeout 5m
k -n "$NS" rollout status deployment/ecsop --timeout=120s
k get crd apideployments.ecsop.io >/dev/null

step "apply the ApiDeployment"
k apply -f "$manifest"
name=$(k apply -f "$manifest" --dry-run=client -o jsonpath='{.metadata.name}')
namespace=$(k apply -f "$manifest" --dry-run=client -o jsonpath='{.metadata.namespace}')
namespace=${namespace:-default}

if [ "$AWS_MODE" = moto ]; then
  step "ECS: complete the deployment once ecsop has created the service (moto never does)"
  cluster=$(k -n "$namespace" get apideployment "$name" -o jsonpath='{.spec.cluster}')
  k -n "$NS" exec deployment/moto -- \
    python /ecsop/aws_setup.py complete --region "$REGION" --cluster "$cluster" --service "$name" --timeout 180
fi

step "kubectl wait --for=condition=Ready apideployment/$name -n $namespace --timeout=$TIMEOUT"
k wait --for=condition=Ready "apideployment/$name" -n "$namespace" --timeout="$TIMEOUT"
k get apideployment "$name" -n "$namespace" -o wide

if [ "$KEEP" = 1 ]; then
  step "kept: cluster $CLUSTER (context $CONTEXT), ApiDeployment $namespace/$name"
  exit 0
fi

step "delete the ApiDeployment (the finalizer tears the AWS resources down first)"
if [ "$AWS_MODE" = real ]; then
  echo "deleting $namespace/$name removes what ecsop created in AWS (deletionPolicy: Delete)."
fi
k delete apideployment "$name" -n "$namespace" --timeout=600s
if [ "$created" = 1 ]; then
  step "kind delete cluster $CLUSTER"
  kind delete cluster --name "$CLUSTER"
fi
step "e2e passed"
