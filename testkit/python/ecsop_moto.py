"""moto, plus the few things ecsop's tests need that moto does not do.

This file is test support. It runs the real moto server (pinned in testkit/python/requirements.txt) and
wraps it in a thin WSGI layer that adds, and only adds:

* per-test isolation by access key: an access key `ECSOPTEST<12-digit account>` is served from that moto
  account (moto's own `x-moto-account-id` header, derived so that unmodified SDK clients and the `ecsop`
  binary can be isolated through plain AWS environment variables);
* a call log per account (service, operation, HTTP status), so tests can count AWS reads and writes made
  by a separate process;
* fault injection per operation: throttling, 5xx, AccessDenied and latency, in each protocol's own error
  shape so the real SDK classifies them as AWS would;
* operation names for API Gateway v2 (REST-JSON: the path and method name the operation, found with moto's
  own router), so the call log and fault rules see `GetRoutes` rather than `GET`;
* API Gateway v2 GetAuthorizers, which moto lacks (see `get_authorizers`);
* an ECS deployment model: moto never progresses deployments and UpdateService does not even start a new
  one. Here UpdateService to a new task definition starts a new PRIMARY deployment (the old one becomes
  ACTIVE), `deploymentConfiguration` and friends are kept, and a driver endpoint moves the PRIMARY
  deployment through its states (progress, complete, fail, circuit-breaker rollback) with the service
  events ECS would write. Deployment alarms act as in ECS: a deployment told to complete while one of
  the CloudWatch alarms it watches (with rollback on) is in ALARM rolls back instead. ECS's record of
  deployments is served too: ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions
  and StopServiceDeployment (ROLLBACK or ABORT);
* ECS's native deployment strategies (`deploymentConfiguration.strategy` BLUE_GREEN, CANARY, LINEAR):
  CreateService and UpdateService check them as ECS does (each load balancer's `advancedConfiguration`:
  an existing alternate target group, an existing role, production and test listener rules whose forward
  action forwards to both target groups; the canary and linear settings' ranges). A new deployment of
  such a service leaves the old one (blue) running and goes, one `progress` of the driver at a time,
  through ECS's lifecycle stages: PRE_SCALE_UP (RECONCILE_SERVICE when it replaces one in progress),
  SCALE_UP, TEST_TRAFFIC_SHIFT (with a test listener rule), PRODUCTION_TRAFFIC_SHIFT (one step for
  BLUE_GREEN, canary then the rest for CANARY, a step per stepPercent for LINEAR, each canary or linear
  step held for its bake time on the account's test clock, which the `advance` drive action moves) and
  BAKE_TIME (held for bakeTimeInMinutes on that clock), moving
  the weights of the listener rules in moto's ELBv2 as ECS does; `complete` (after BAKE_TIME) stops blue
  and swaps each load balancer's target group with its alternate; a failure or StopServiceDeployment
  sends the traffic back to blue, which still runs, without a new deployment;
* ECR image scans: moto's scan results are canned and scan on push never scans. Here an image pushed to
  a scan-on-push repository has a completed scan with no findings, and a control endpoint sets the
  status and finding counts of an image's scan (as ECR's scanner would report them).

Control endpoints live under /_ecsop/ and take and return JSON.

CloudWatch alarms over Smithy RPC v2 CBOR are the other addition: the Rust SDK speaks only that protocol
to CloudWatch and moto serves CloudWatch only over Query and JSON, so those calls are decoded here and
answered from moto's own CloudWatch backend (see `serve_rpc_v2_cbor`), with the call log and faults as
for any other call.
"""

from __future__ import annotations

import argparse
import http
import io
import json
import os
import random
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import cbor2
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

ACCESS_KEY_ACCOUNT = re.compile(r"^ECSOPTEST(\d{12})$")
CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
# Smithy RPC v2: POST /service/<service shape name>/operation/<operation>.
RPC_V2_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
CLOUDWATCH_SERVICE_SHAPE = "GraniteServiceVersion20100801"

# Error codes per protocol family. The SDK's retry classifier knows these names.
JSON_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "server_error": (500, "InternalFailure", "We encountered an internal error. Please try again."),
    "unavailable": (503, "ServiceUnavailable", "Service is unavailable. Please try again."),
    "access_denied": (400, "AccessDeniedException", "User is not authorized to perform this operation"),
}
QUERY_ERRORS = {
    "throttle": (400, "Sender", "Throttling", "Rate exceeded"),
    "server_error": (500, "Receiver", "InternalFailure", "We encountered an internal error. Please try again."),
    "unavailable": (503, "Receiver", "ServiceUnavailable", "Service is unavailable. Please try again."),
    "access_denied": (403, "Sender", "AccessDenied", "User is not authorized to perform this operation"),
}
# API Gateway answers throttling with HTTP 429 TooManyRequestsException.
REST_JSON_ERRORS = {
    "throttle": (429, "TooManyRequestsException", "Too Many Requests"),
    "server_error": (500, "InternalFailure", "We encountered an internal error. Please try again."),
    "unavailable": (503, "ServiceUnavailable", "Service is unavailable. Please try again."),
    "access_denied": (403, "AccessDeniedException", "User is not authorized to perform this operation"),
}
# REST-JSON services named by operation in the call log: signing name -> (path prefix, moto's service name).
REST_JSON_SERVICES = {"apigateway": ("/v2/", "apigatewayv2")}
REST_XML_ERRORS = {
    "throttle": (503, "SlowDown", "Please reduce your request rate."),
    "server_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "unavailable": (503, "ServiceUnavailable", "Service is unavailable. Please try again."),
    "access_denied": (403, "AccessDenied", "Access Denied"),
}


READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "HEAD", "GET")


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# Seconds each account's test clock runs ahead of the wall clock (`/_ecsop/clock`): ECS's bake times are
# waited on this clock, so a test plays a 10-minute bake by advancing it, not by sleeping.
CLOCK_OFFSET: dict[str, float] = {}


def layer_now(account: str) -> datetime:
    """The test clock of `account`."""
    from datetime import timedelta

    return utcnow() + timedelta(seconds=CLOCK_OFFSET.get(account, 0.0))


def baked(native: dict[str, Any], minutes: int) -> bool:
    """Whether `minutes` have passed on the account's test clock since the current stage (or step) began."""
    elapsed = (layer_now(native["account"]) - native["stageStartedAt"]).total_seconds()
    return elapsed >= minutes * 60


class Harness:
    """The WSGI layer in front of moto."""

    def __init__(self, app: Any, idle_exit: float) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.rng = random.Random(int(os.environ.get("ECSOP_MOTO_SEED", "7")))
        self.last_request = time.monotonic()
        self.idle_exit = idle_exit

    # ---- WSGI entry ------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.last_request = time.monotonic()
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_ecsop/"):
            return self.control(environ, start_response)

        call = self.describe_call(environ)
        if call["account"]:
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = call["account"]
        refusal = check_request(call, environ)
        if refusal is not None:
            # What AWS refuses before doing anything (limits moto does not enforce).
            status, headers, body = refusal
            call["status"] = int(status.split()[0])
            call["refused"] = True
            self.record(call)
            start_response(status, headers)
            return [body]
        fault = self.match_fault(call)
        if fault is not None and fault.get("lost"):
            # A lost response: AWS carried the call out, and its answer never arrived (a timeout, a 5xx
            # from a front end, a reset connection). The call is served for real, then answered with
            # the fault instead, so a client that repeats it repeats a call that already took effect.
            return self.lost_response(environ, start_response, call, fault)
        if fault is not None:
            latency = fault.get("latencyMs")
            if latency:
                time.sleep(latency / 1000.0)
            if fault["kind"] != "latency":
                call["status"] = None
                call["fault"] = fault["kind"]
                status, headers, body = self.error_response(call, fault["kind"])
                call["status"] = int(status.split()[0])
                self.record(call)
                start_response(status, headers)
                return [body]

        added = ADDED_OPERATIONS.get((call["service"], call["operation"]))
        if added is not None:
            status, headers, body = added(call, environ)
            call["status"] = int(status.split()[0])
            self.record(call)
            start_response(status, headers)
            return [body]

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            call["status"] = int(status.split()[0])
            self.record(call)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        if call["protocol"] == "rpc-v2-cbor":
            status, headers, body = serve_rpc_v2_cbor(call, read_body(environ))
            recording_start_response(status, headers)
            return [body]
        return self.app(environ, recording_start_response)

    def lost_response(self, environ: dict[str, Any], start_response: Any, call: dict[str, Any], fault: dict) -> Any:
        served: dict[str, Any] = {}

        def keep_status(status: str, headers: Any, exc_info: Any = None) -> Any:
            served["status"] = status
            return lambda _data: None

        added = ADDED_OPERATIONS.get((call["service"], call["operation"]))
        if added is not None:
            status, _, _ = added(call, environ)
            served["status"] = status
        elif call["protocol"] == "rpc-v2-cbor":
            status, _, _ = serve_rpc_v2_cbor(call, read_body(environ))
            served["status"] = status
        else:
            body = self.app(environ, keep_status)
            for _ in body:
                pass
            if hasattr(body, "close"):
                body.close()
        call["fault"] = f"lost:{fault['kind']}"
        call["served"] = int(str(served.get("status", "0")).split()[0])
        status, headers, body = self.error_response(call, fault["kind"])
        call["status"] = int(status.split()[0])
        self.record(call)
        start_response(status, headers)
        return [body]

    # ---- calls -----------------------------------------------------------------------------------
    def describe_call(self, environ: dict[str, Any]) -> dict[str, Any]:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        account, region, service = None, None, None
        m = CREDENTIAL.search(auth)
        if m:
            key, region, service = m.group(1), m.group(2), m.group(3)
            am = ACCESS_KEY_ACCOUNT.match(key)
            if am:
                account = am.group(1)
        if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
            account = environ["HTTP_X_MOTO_ACCOUNT_ID"]
        target = environ.get("HTTP_X_AMZ_TARGET")
        protocol, operation = "rest", None
        if target:
            protocol, operation = "json", target.rsplit(".", 1)[-1]
        elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            action = parse_qs(body.decode("utf-8", "replace")).get("Action")
            if action:
                protocol, operation = "query", action[0]
        if operation is None and service in REST_JSON_SERVICES:
            prefix, model = REST_JSON_SERVICES[service]
            if environ.get("PATH_INFO", "").startswith(prefix):
                named = rest_operation(model, environ)
                if named is not None:
                    protocol, operation = "rest-json", named[0]
                    environ["ecsop.uri_params"] = named[1]
        if operation is None:
            operation = environ.get("REQUEST_METHOD", "GET")
        # Smithy RPC v2 names the service and the operation in the path (CloudWatch, from the Rust SDK).
        rpc = RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
        rpc_service = None
        if rpc and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
            protocol, rpc_service, operation = "rpc-v2-cbor", rpc.group(1), rpc.group(2)
        return {
            "account": account,
            "region": region,
            "service": service,
            "operation": operation,
            "protocol": protocol,
            # The service shape an RPC v2 request names in its path.
            "rpcService": rpc_service,
            "status": None,
            "fault": None,
            "at": time.time(),
        }

    def record(self, call: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(call)
            if len(self.calls) > 200_000:
                del self.calls[:100_000]

    # ---- faults ----------------------------------------------------------------------------------
    def match_fault(self, call: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.faults:
                if rule.get("account") and rule["account"] != call["account"]:
                    continue
                if rule.get("service") and rule["service"] != call["service"]:
                    continue
                if rule.get("operation") and rule["operation"] != call["operation"]:
                    continue
                if rule.get("writesOnly") and is_read(call["operation"]):
                    continue
                if rule.get("skip"):
                    # Let the first `skip` matching calls through (to fail "the call after N writes").
                    rule["skip"] -= 1
                    continue
                if rule.get("remaining") is not None:
                    if rule["remaining"] <= 0:
                        continue
                if self.rng.random() >= float(rule.get("probability", 1.0)):
                    continue
                if rule.get("remaining") is not None:
                    rule["remaining"] -= 1
                rule["hits"] = rule.get("hits", 0) + 1
                return dict(rule)
        return None

    def error_response(self, call: dict[str, Any], kind: str) -> tuple[str, list, bytes]:
        if call["protocol"] == "rpc-v2-cbor":
            # CloudWatch is `awsQueryCompatible`: besides `__type` in the CBOR body, AWS sends the
            # service's old Query error code in `x-amzn-query-error`, and the SDK takes the code from
            # that header when present (`Throttling`, `AccessDenied`, ...).
            code, name, message = JSON_ERRORS[kind]
            _, fault, query_code, _ = QUERY_ERRORS[kind]
            return cbor_error(code, name, message, f"{query_code};{fault}")
        request_id = str(uuid.uuid4())
        if call["protocol"] == "json":
            code, name, message = JSON_ERRORS[kind]
            body = json.dumps({"__type": name, "message": message}).encode()
            headers = [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-ErrorType", name),
            ]
        elif call["protocol"] == "rest-json":
            code, name, message = REST_JSON_ERRORS[kind]
            body = json.dumps({"message": message}).encode()
            headers = [
                ("Content-Type", "application/json"),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-ErrorType", name),
            ]
        elif call["protocol"] == "query":
            code, typ, name, message = QUERY_ERRORS[kind]
            body = (
                f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>{typ}</Type>'
                f"<Code>{name}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                f"</ErrorResponse>"
            ).encode()
            headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        else:
            code, name, message = REST_XML_ERRORS[kind]
            body = (
                f"<Error><Code>{name}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ).encode()
            headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        headers.append(("Content-Length", str(len(body))))
        reason = {
            400: "Bad Request",
            403: "Forbidden",
            429: "Too Many Requests",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        return f"{code} {reason[code]}", headers, body

    # ---- control API -----------------------------------------------------------------------------
    def control(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            status, payload = self.route(method, path, query, body)
        except KeyError as exc:
            status, payload = 404, {"error": f"not found: {exc}"}
        except (ValueError, TypeError) as exc:
            status, payload = 400, {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a control call must answer, not kill the server
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(payload, default=str).encode()
        start_response(
            f"{status} {'OK' if status < 400 else 'Error'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, Any]:
        if path == "/_ecsop/health":
            return 200, {"status": "ok", "pid": os.getpid()}
        if path == "/_ecsop/calls" and method == "GET":
            account = (query.get("account") or [None])[0]
            with self.lock:
                calls = [c for c in self.calls if account is None or c["account"] == account]
            return 200, {"calls": calls}
        if path == "/_ecsop/calls" and method == "DELETE":
            account = (query.get("account") or [None])[0]
            with self.lock:
                self.calls = [c for c in self.calls if account is not None and c["account"] != account]
            return 200, {}
        if path == "/_ecsop/faults" and method == "POST":
            rule = {
                "id": str(uuid.uuid4()),
                "account": body.get("account"),
                "service": body.get("service"),
                "operation": body.get("operation"),
                "kind": body["kind"],
                "probability": float(body.get("probability", 1.0)),
                "remaining": body.get("count"),
                "latencyMs": body.get("latencyMs"),
                "skip": int(body.get("skip") or 0),
                "writesOnly": bool(body.get("writesOnly", False)),
                "lost": bool(body.get("lost", False)),
                "hits": 0,
            }
            if rule["kind"] not in ("latency",) + tuple(JSON_ERRORS):
                raise ValueError(f"unknown fault kind {rule['kind']!r}")
            with self.lock:
                self.faults.append(rule)
            return 200, rule
        if path == "/_ecsop/faults" and method == "GET":
            with self.lock:
                return 200, {"faults": list(self.faults)}
        if path == "/_ecsop/faults" and method == "DELETE":
            account = (query.get("account") or [None])[0]
            with self.lock:
                self.faults = [f for f in self.faults if account is not None and f["account"] != account]
            return 200, {}
        if path == "/_ecsop/propagation" and method == "POST":
            PROPAGATION[body["account"]] = float(body["seconds"])
            return 200, {}
        if path == "/_ecsop/ecs/drain" and method == "POST":
            DRAIN_READS[body["account"]] = int(body["reads"])
            return 200, {}
        if path == "/_ecsop/ecs/drive" and method == "POST":
            return 200, drive(body)
        if path == "/_ecsop/iam/role" and method == "POST":
            return 200, {"arn": create_role(body["account"], body["name"], body.get("service", "ecs.amazonaws.com"))}
        if path == "/_ecsop/ecr/scan" and method == "POST":
            key = (body["account"], body["region"], body["repository"], body["digest"])
            with self.lock:
                SCANS[key] = {"status": body.get("status", "COMPLETE"), "counts": body.get("counts") or {}}
            return 200, SCANS[key]
        if path == "/_ecsop/ecs/service" and method == "GET":
            svc = find_service(
                query["account"][0], query["region"][0], query["cluster"][0], query["service"][0]
            )
            return 200, {"deployments": svc.deployments, "events": svc.events, "taskDefinition": svc.task_definition}
        if path == "/_ecsop/cloudwatch/alarm-state" and method == "POST":
            backend = cloudwatch_backend(body["account"], body["region"])
            backend.set_alarm_state(body["name"], body.get("reason", "set by the test harness"), None, body["state"])
            return 200, {}
        if path == "/_ecsop/cloudwatch/metrics" and method == "POST":
            key = (body["account"], body["region"])
            with self.lock:
                METRICS.setdefault(key, []).extend(
                    {
                        "namespace": body["namespace"],
                        "name": body["name"],
                        "dimensions": dict(body.get("dimensions") or {}),
                        "at": float(point["at"]),
                        "value": float(point["value"]),
                        "count": int(point.get("count", 1)),
                    }
                    for point in body["points"]
                )
            return 200, {}
        if path == "/_ecsop/cloudwatch/alarm" and method == "GET":
            backend = cloudwatch_backend(query["account"][0], query["region"][0])
            alarm = backend.alarms.get(query["name"][0])
            if alarm is None:
                return 200, {"state": None, "reason": None}
            return 200, {"state": alarm.state_value, "reason": alarm.state_reason}
        raise KeyError(path)

    def watchdog(self) -> None:
        """Exit when idle, so a server shared by several test processes does not outlive them."""
        while True:
            time.sleep(1.0)
            if self.idle_exit and time.monotonic() - self.last_request > self.idle_exit:
                os._exit(0)


# ---- REST-JSON operations --------------------------------------------------------------------------

def rest_operation(model: str, environ: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The operation a REST request calls and its URI labels, as moto's router (from the botocore model)
    matches them; None when nothing matches."""
    from moto.core.request import Request
    from moto.core.routing import get_service_router

    try:
        # Shallow: matching looks at the method, path, query and headers only; the body stays unread.
        operation, params = get_service_router(model).match(Request(environ, shallow=True))
    except Exception:  # noqa: BLE001 - an unnamed call is logged by its HTTP method, as before
        return None
    return operation.name, params


def json_response(status: int, payload: Any, error_type: str | None = None) -> tuple[str, list, bytes]:
    body = json.dumps(payload).encode()
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    headers.append(("Content-Length", str(len(body))))
    reason = {200: "OK", 201: "Created", 404: "Not Found"}.get(status, "Error")
    return f"{status} {reason}", headers, body


def get_authorizers(call: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    """API Gateway v2 GetAuthorizers: a moto gap (moto 5.2.5 has CreateAuthorizer and GetAuthorizer but no
    list, and answers an HTML 500). Answers like AWS, `{"items": [...]}` in camelCase from moto's own
    authorizers (unset fields left out), or NotFoundException for a missing API. Not paginated, like
    moto's GetRoutes and GetIntegrations."""
    from moto.apigatewayv2.exceptions import APIGatewayV2Error
    from moto.apigatewayv2.models import apigatewayv2_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = apigatewayv2_backends[call["account"] or DEFAULT_ACCOUNT_ID][call["region"] or "us-east-1"]
    try:
        api = backend.get_api(environ["ecsop.uri_params"]["apiId"])
    except APIGatewayV2Error as exc:
        return json_response(exc.code, {"message": exc.message}, exc.error_type)
    items = [{k: v for k, v in a.to_json().items() if v is not None} for a in api.authorizers.values()]
    return json_response(200, {"items": items})


# ECS's durable record of each service's deployments (ListServiceDeployments), by service ARN, newest
# first, and the service revisions they target, by ARN. moto has neither.
SERVICE_DEPLOYMENTS: dict[str, list[dict[str, Any]]] = {}
SERVICE_REVISIONS: dict[str, dict[str, Any]] = {}


def note_deployments(svc: Any) -> None:
    """Record the service's deployments: a new one gets a record (and a service revision), and each one's
    status follows its rollout; a rollback, once marked, stays so, and so does a status the layer set
    itself (`_final`: a stopped, superseded or rolled-back native deployment)."""
    record = SERVICE_DEPLOYMENTS.setdefault(svc.arn, [])
    prefix = svc.arn.replace(":service/", ":service-deployment/", 1)
    for d in svc.deployments:
        arn = f"{prefix}/{d['id'].split('/')[-1]}"
        status = {"COMPLETED": "SUCCESSFUL", "FAILED": "STOPPED"}.get(d.get("rolloutState"), "IN_PROGRESS")
        existing = next((r for r in record if r["serviceDeploymentArn"] == arn), None)
        if existing is None:
            revision = svc.arn.replace(":service/", ":service-revision/", 1) + "/" + uuid.uuid4().hex[:19]
            SERVICE_REVISIONS[revision] = {
                "serviceRevisionArn": revision,
                "serviceArn": svc.arn,
                "clusterArn": svc.cluster_arn,
                "taskDefinition": d["taskDefinition"],
                "loadBalancers": json.loads(json.dumps(svc.load_balancers or [])),
                "createdAt": d.get("createdAt") or utcnow(),
            }
            # The revisions the deployment replaces: those of the service's other deployments now.
            sources = [
                {"deploymentId": r["_deploymentId"], "arn": r["targetServiceRevisionArn"]}
                for other in svc.deployments
                if other is not d
                for r in record
                if r.get("_deploymentId") == other["id"]
            ]
            config = getattr(svc, "deployment_configuration", None)
            record.insert(0, {
                "serviceDeploymentArn": arn,
                "serviceArn": svc.arn,
                "clusterArn": svc.cluster_arn,
                "targetServiceRevisionArn": revision,
                "status": status,
                "statusReason": d.get("rolloutStateReason"),
                "createdAt": d.get("createdAt") or utcnow(),
                "startedAt": d.get("createdAt") or utcnow(),
                "updatedAt": utcnow(),
                "deploymentConfiguration": json.loads(json.dumps(config)) if config else None,
                # Internal (never answered): the deployment, its sources and the service, to find them again.
                "_deploymentId": d["id"],
                "_sources": sources,
                "_service": (svc._account_id, svc.region_name, svc.cluster_name, svc.name),
            })
        elif not existing["status"].startswith("ROLLBACK") and not existing.get("_final"):
            if existing["status"] != status:
                existing["updatedAt"] = utcnow()
            existing["status"] = status
            existing["statusReason"] = d.get("rolloutStateReason")
            if status in ("SUCCESSFUL", "STOPPED"):
                existing.setdefault("finishedAt", utcnow())
            if status == "STOPPED":
                existing.setdefault("stoppedAt", utcnow())


def record_of(svc: Any, deployment_id: str) -> dict[str, Any] | None:
    """The service-deployment record of one of the service's deployments."""
    return next((r for r in SERVICE_DEPLOYMENTS.get(svc.arn, []) if r.get("_deploymentId") == deployment_id), None)


def epoch(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return value


def ecs_response(status: int, payload: Any, error_type: str | None = None) -> tuple[str, list, bytes]:
    """An answer in ECS's protocol (AWS JSON 1.1)."""
    status_line, headers, body = json_response(status, payload if not error_type else {"__type": error_type, **payload}, error_type)
    headers = [("Content-Type", "application/x-amz-json-1.1") if h[0] == "Content-Type" else h for h in headers]
    return status_line, headers, body


# The members of ECS's ServiceDeploymentBrief (what ListServiceDeployments answers).
SERVICE_DEPLOYMENT_BRIEF = (
    "serviceDeploymentArn", "serviceArn", "clusterArn", "startedAt", "createdAt", "finishedAt",
    "targetServiceRevisionArn", "status", "statusReason",
)


def list_service_deployments(call: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    """ECS ListServiceDeployments: the layer's record of the service's deployments, newest first."""
    body = json.loads(read_body(environ) or b"{}")
    try:
        svc = find_service(call["account"], call["region"], body.get("cluster", "default"), body["service"])
    except KeyError:
        return ecs_response(400, {"message": "Service not found."}, "ServiceNotFoundException")
    wanted = body.get("status") or None
    items = [
        {k: epoch(v) for k, v in r.items() if k in SERVICE_DEPLOYMENT_BRIEF and v is not None}
        for r in SERVICE_DEPLOYMENTS.get(svc.arn, [])
        if wanted is None or r["status"] in wanted
    ]
    return ecs_response(200, {"serviceDeployments": items[: int(body.get("maxResults") or 20)]})


def describe_service_revisions(call: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    """ECS DescribeServiceRevisions: the revisions the recorded deployments target."""
    body = json.loads(read_body(environ) or b"{}")
    found, failures = [], []
    for arn in body.get("serviceRevisionArns", []):
        if arn in SERVICE_REVISIONS:
            found.append({k: epoch(v) for k, v in SERVICE_REVISIONS[arn].items()})
        else:
            failures.append({"arn": arn, "reason": "MISSING"})
    return ecs_response(200, {"serviceRevisions": found, "failures": failures})


def create_deployment(call: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    """API Gateway v2 CreateDeployment (moto has none): a deployment id, made the stage's when the
    request names one, as AWS does."""
    from moto.apigatewayv2.exceptions import APIGatewayV2Error
    from moto.apigatewayv2.models import apigatewayv2_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = apigatewayv2_backends[call["account"] or DEFAULT_ACCOUNT_ID][call["region"] or "us-east-1"]
    body = json.loads(read_body(environ) or b"{}")
    try:
        api = backend.get_api(environ["ecsop.uri_params"]["apiId"])
    except APIGatewayV2Error as exc:
        return json_response(exc.code, {"message": exc.message}, exc.error_type)
    deployment_id = uuid.uuid4().hex[:6]
    stage_name = body.get("stageName")
    if stage_name:
        stage = api.stages.get(stage_name)
        if stage is None:
            return json_response(404, {"message": f"Invalid stage identifier specified {stage_name}"}, "NotFoundException")
        stage.deployment_id = deployment_id
    return json_response(201, {
        "deploymentId": deployment_id,
        "deploymentStatus": "DEPLOYED",
        "description": body.get("description"),
        "createdDate": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    })


def patch_apigatewayv2() -> None:
    """Stages name the deployment they serve (moto has no deployments)."""
    from moto.apigatewayv2 import models

    original = models.Stage.to_json

    def to_json(self: Any) -> dict[str, Any]:
        out = original(self)
        if getattr(self, "deployment_id", None):
            out["deploymentId"] = self.deployment_id
        return out

    models.Stage.to_json = to_json


# Operations the layer answers itself, by (signing name, operation).
ADDED_OPERATIONS = {
    ("apigateway", "CreateDeployment"): create_deployment,
    ("apigateway", "GetAuthorizers"): get_authorizers,
    ("ecs", "ListServiceDeployments"): list_service_deployments,
    ("ecs", "DescribeServiceRevisions"): describe_service_revisions,
    # Defined with the ECS deployment model further down, hence looked up when called.
    ("ecs", "DescribeServiceDeployments"): lambda call, environ: describe_service_deployments(call, environ),
    # A write in the call log and for `writesOnly` faults: its name has no read prefix.
    ("ecs", "StopServiceDeployment"): lambda call, environ: stop_service_deployment(call, environ),
}


# ---- limits AWS enforces and moto does not -------------------------------------------------------

# AWS's pattern for tag keys and values: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, keys up to 128 characters,
# values up to 256.
TAG_PUNCTUATION = set("_.:/=+-@")
# The error each service answers a refused tag with: (HTTP status, code).
TAG_ERRORS = {
    "ecs": (400, "InvalidParameterException"),
    "ecr": (400, "InvalidTagParameterException"),
    "servicediscovery": (400, "InvalidInput"),
    "application-autoscaling": (400, "ValidationException"),
}


def tag_problem(key: str, value: str) -> str | None:
    for text in (key, value):
        bad = [c for c in text if not (c.isalnum() or c.isspace() or c in TAG_PUNCTUATION)]
        if bad:
            return f"Tag {key}={value}: '{bad[0]}' is not allowed; tags take letters, digits, spaces and _.:/=+-@"
    if len(key) > 128 or len(value) > 256:
        return f"Tag {key}: keys take at most 128 characters and values at most 256 (value has {len(value)})"
    return None


def request_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def json_tags(body: dict[str, Any]) -> list[tuple[str, str]]:
    tags = body.get("tags", body.get("Tags"))
    if isinstance(tags, dict):
        return [(str(k), str(v)) for k, v in tags.items()]
    out = []
    for t in tags or []:
        out.append((str(t.get("key", t.get("Key", ""))), str(t.get("value", t.get("Value", "")))))
    return out


def query_tags(form: dict[str, list[str]]) -> list[tuple[str, str]]:
    keys = {k: v[0] for k, v in form.items() if re.fullmatch(r"Tags\.member\.\d+\.Key", k)}
    return [(v, form.get(k[: -len("Key")] + "Value", [""])[0]) for k, v in keys.items()]


def rule_condition_problem(form: dict[str, list[str]]) -> str | None:
    """ELBv2: at most 3 values per condition, 5 per rule, and 5 wildcards per rule."""
    per_condition: dict[str, list[str]] = {}
    for k, v in form.items():
        m = re.fullmatch(r"Conditions\.member\.(\d+)\.(?:[A-Za-z]+Config\.)?Values\.member\.\d+", k)
        if m:
            per_condition.setdefault(m.group(1), []).append(v[0])
    values = [v for vs in per_condition.values() for v in vs]
    if any(len(vs) > 3 for vs in per_condition.values()):
        return "A condition can only have '3' values"
    if len(values) > 5:
        return "A rule can only have '5' condition values"
    if sum(v.count("*") + v.count("?") for v in values) > 5:
        return "A rule can only have '5' wildcards"
    return None


def check_request(call: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes] | None:
    """AWS's refusal of a request moto would take (tags, listener-rule conditions), or None."""
    service, operation = call["service"], call["operation"]
    if is_read(operation):
        return None
    if call["protocol"] == "query" and service == "elasticloadbalancing":
        form = parse_qs(request_body(environ).decode("utf-8", "replace"))
        problem = next((p for k, v in query_tags(form) if (p := tag_problem(k, v))), None)
        if problem is None and operation in ("CreateRule", "ModifyRule"):
            problem = rule_condition_problem(form)
        if problem is None:
            return None
        body = (
            f'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error>'
            f"<Type>Sender</Type><Code>ValidationError</Code><Message>{problem}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ).encode()
        return "400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body
    if call["protocol"] == "json" and service in TAG_ERRORS:
        try:
            body = json.loads(request_body(environ) or b"{}")
        except ValueError:
            return None
        problem = next((p for k, v in json_tags(body) if (p := tag_problem(k, v))), None)
        if problem is None:
            return None
        status, code = TAG_ERRORS[service]
        return ecs_response(status, {"__type": code, "message": problem}, code)
    return None


# Seconds a change takes to reach the other services, per account (0: at once), and when it was made:
# an ECS service's creation, by (account, region, cluster, service), and a target group's first listener
# rule, by (account, target group ARN).
PROPAGATION: dict[str, float] = {}
SERVICE_CREATED: dict[tuple[str, str, str, str], float] = {}
TG_BOUND: dict[tuple[str, str], float] = {}


def unsettled(account: str, made: float | None) -> bool:
    return made is not None and time.monotonic() < made + PROPAGATION.get(account, 0.0)


def check_bound(account: str, load_balancers: Any) -> None:
    """ECS refuses a target group whose load balancer it does not see (yet)."""
    from moto.ecs.exceptions import InvalidParameterException

    for lb in load_balancers or []:
        arn = lb.get("targetGroupArn")
        if arn and unsettled(account, TG_BOUND.get((account, arn))):
            raise InvalidParameterException(
                f"The target group with targetGroupArn {arn} does not have an associated load balancer."
            )


def patch_propagation() -> None:
    """Eventual consistency, as AWS shows it right after a change: Application Auto Scaling does not see
    a new ECS service, and ECS does not see the load balancer of a target group just put behind a
    listener rule, for `PROPAGATION[account]` seconds."""
    from moto.applicationautoscaling import models as autoscaling
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.elbv2 import models as elbv2

    original_exists = autoscaling.ApplicationAutoscalingBackend._ecs_service_exists_for_target

    def ecs_service_exists(self: Any, r_id: str) -> bool:
        _, cluster, service = r_id.split("/")
        key = (self.account_id, self.region_name, cluster, service)
        if unsettled(self.account_id, SERVICE_CREATED.get(key)):
            raise AWSValidationException(f"ECS service doesn't exist: {r_id}")
        return original_exists(self, r_id)

    autoscaling.ApplicationAutoscalingBackend._ecs_service_exists_for_target = ecs_service_exists

    original_create_rule = elbv2.ELBv2Backend.create_rule

    def create_rule(self: Any, listener_arn: str, conditions: Any, priority: int, actions: Any, *a: Any, **kw: Any) -> Any:
        rule = original_create_rule(self, listener_arn, conditions, priority, actions, *a, **kw)
        for action in rule.actions:
            if action.type == "forward":
                for arn in self._get_target_group_arns_from(action_data=action.data):
                    TG_BOUND.setdefault((self.account_id, arn), time.monotonic())
        return rule

    elbv2.ELBv2Backend.create_rule = create_rule


# ---- ECS deployment model ------------------------------------------------------------------------

def ecs_backend(account: str, region: str) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[account][region]


def find_service(account: str, region: str, cluster: str, service: str) -> Any:
    backend = ecs_backend(account, region)
    key = f"{cluster.split('/')[-1]}:{service.split('/')[-1]}"
    if key not in backend.services:
        raise KeyError(f"service {key} in account {account} region {region}")
    return backend.services[key]


def new_deployment_id() -> str:
    return "ecs-svc/" + "".join(random.choice("0123456789") for _ in range(19))


def add_event(svc: Any, message: str) -> None:
    # ECS lists service events newest first.
    svc.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message})
    del svc.events[100:]


def primary(svc: Any) -> dict[str, Any]:
    for d in svc.deployments:
        if d["status"] == "PRIMARY":
            return d
    raise ValueError(f"service {svc.name} has no PRIMARY deployment")


def start_deployment(svc: Any, task_definition: str, launch_type: str | None) -> dict[str, Any]:
    for d in svc.deployments:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = utcnow()
    dep_id = new_deployment_id()
    dep = {
        "createdAt": utcnow(),
        "desiredCount": svc.desired_count,
        "failedTasks": 0,
        "id": dep_id,
        "launchType": launch_type,
        "pendingCount": 0,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
        "runningCount": 0,
        "platformFamily": "FARGATE" if launch_type == "FARGATE" else "EC2",
        "networkConfiguration": getattr(svc, "network_configuration", None) or None,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "updatedAt": utcnow(),
    }
    svc.deployments.insert(0, dep)
    return dep


def drive(body: dict) -> dict:
    svc = find_service(body["account"], body["region"], body["cluster"], body["service"])
    action = body["action"]
    if action == "advance":
        # The account's test clock moves on: bake times pass without anyone sleeping.
        CLOCK_OFFSET[body["account"]] = CLOCK_OFFSET.get(body["account"], 0.0) + float(body["seconds"])
        return {"clockOffsetSeconds": CLOCK_OFFSET[body["account"]]}
    dep = primary(svc)
    desired = svc.desired_count
    name = f"(service {svc.name})"
    record = record_of(svc, dep["id"])
    native = record is not None and record.get("_native") is not None and record["status"] == "IN_PROGRESS"
    if native and action in ("progress", "complete", "fail", "rollback"):
        # A deployment with a native strategy (BLUE_GREEN, CANARY, LINEAR): its lifecycle stages.
        drive_native(body, svc, dep, record, name)
    elif action == "progress":
        running = int(body.get("running", max(1, desired // 2) if desired else 0))
        dep["runningCount"] = min(running, desired)
        dep["pendingCount"] = max(desired - dep["runningCount"], 0)
        dep["updatedAt"] = utcnow()
        add_event(svc, f"{name} has started {dep['runningCount']} tasks: (task {uuid.uuid4().hex[:32]}).")
    elif action == "complete" and (firing := firing_deployment_alarms(body, svc)):
        # ECS: an alarm the deployment watches went off before it was steady: fail it and roll back.
        rollback_deployment(svc, dep, name, body, f"alarm(s) detected: {', '.join(firing)}")
    elif action == "complete":
        dep["runningCount"] = desired
        dep["pendingCount"] = 0
        dep["rolloutState"] = "COMPLETED"
        dep["rolloutStateReason"] = f"ECS deployment {dep['id']} completed."
        dep["updatedAt"] = utcnow()
        # Older deployments drain away once the new one is steady.
        svc.deployments[:] = [dep]
        svc.running_count = desired
        svc.pending_count = 0
        add_event(svc, f"{name} (deployment {dep['id']}) deployment completed.")
        add_event(svc, f"{name} has reached a steady state.")
    elif action in ("fail", "rollback"):
        reason = body.get("reason", "Essential container in task exited")
        failed = int(body.get("failedTasks", 3))
        dep["failedTasks"] = dep.get("failedTasks", 0) + failed
        dep["runningCount"] = 0
        dep["pendingCount"] = 0
        dep["rolloutState"] = "FAILED"
        dep["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        dep["updatedAt"] = utcnow()
        for _ in range(min(failed, 3)):
            add_event(svc, f"{name} (task {uuid.uuid4().hex[:32]}) stopped: {reason}.")
        add_event(svc, f"{name} (deployment {dep['id']}) deployment failed: tasks failed to start.")
        if action == "rollback":
            rollback_deployment(svc, dep, name, body, None)
    elif action == "stuck":
        add_event(svc, f"{name} is unable to consistently start tasks successfully.")
    else:
        raise ValueError(f"unknown action {action!r}: progress, complete, fail, rollback or stuck")
    note_deployments(svc)
    if action == "complete" and primary(svc).get("rolloutState") == "COMPLETED":
        for r in SERVICE_DEPLOYMENTS.get(svc.arn, []):
            if r["status"] == "ROLLBACK_IN_PROGRESS":
                r["status"] = "ROLLBACK_SUCCESSFUL"
                r["finishedAt"] = r["updatedAt"] = utcnow()
    answer = {"deployments": svc.deployments, "events": svc.events[:5]}
    if strategy_of(getattr(svc, "deployment_configuration", None)) != "ROLLING":
        answer.update(native_answer(svc, record))
    return answer


def rollback_deployment(svc: Any, dep: dict, name: str, body: dict, alarm_reason: str | None) -> None:
    """Fail the PRIMARY deployment `dep` and start one back to the last good task definition."""
    if alarm_reason is not None:
        dep["runningCount"] = 0
        dep["pendingCount"] = 0
        dep["rolloutState"] = "FAILED"
        dep["rolloutStateReason"] = f"ECS deployment {dep['id']} rolled back: {alarm_reason}."
        dep["updatedAt"] = utcnow()
        add_event(svc, f"{name} (deployment {dep['id']}) deployment failed: {alarm_reason}.")
    previous = [d for d in svc.deployments if d is not dep and d.get("rolloutState") != "FAILED"]
    target = body.get("taskDefinition") or (previous[0]["taskDefinition"] if previous else None)
    if target is None:
        raise ValueError("no earlier deployment to roll back to")
    note_deployments(svc)
    rollback = start_deployment(svc, target, dep.get("launchType"))
    svc.task_definition = target
    # The failed deployment has no task left: ECS drops it from DescribeServices in the time its tasks
    # take to stop; the layer drops it at once, the hardest case for a poller. ECS's deployment record
    # keeps it, as rolling back.
    svc.deployments[:] = [rollback]
    note_deployments(svc)
    back_to = record_of(svc, rollback["id"])
    for r in SERVICE_DEPLOYMENTS.get(svc.arn, []):
        if r["serviceDeploymentArn"].endswith("/" + dep["id"].split("/")[-1]):
            r["status"] = "ROLLBACK_IN_PROGRESS"
            r["updatedAt"] = utcnow()
            # Not over yet: it ends when the rollback deployment completes.
            r.pop("finishedAt", None)
            r.pop("stoppedAt", None)
            r["rollback"] = {
                "reason": alarm_reason or body.get("reason") or "circuit breaker",
                "startedAt": utcnow(),
                "serviceRevisionArn": back_to["targetServiceRevisionArn"] if back_to else None,
            }
    add_event(svc, f"{name} rolling back to deployment {rollback['id']}.")


def firing_deployment_alarms(body: dict, svc: Any) -> list[str]:
    """The alarms the service's deployments watch, with rollback on, that are in ALARM now."""
    config = getattr(svc, "deployment_configuration", None) or {}
    alarms = config.get("alarms") or {}
    if not (alarms.get("enable") and alarms.get("rollback")):
        return []
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[body["account"]][body["region"]]
    return [n for n in alarms.get("alarmNames", []) if n in backend.alarms and backend.alarms[n].state_value == "ALARM"]


# ---- ECS native deployment strategies (BLUE_GREEN, CANARY, LINEAR) ------------------------------------
#
# ECS shifts traffic itself for these: the new deployment ("green") starts its tasks beside the old one
# ("blue"), which keeps running; ECS moves the weights of the production listener rule (and of the test
# listener rule, if any) from the blue target group to the green one, the alternate target group of the
# load balancer; after the bake time it stops blue and swaps the target groups in the service's load
# balancer (targetGroupArn <-> advancedConfiguration.alternateTargetGroupArn). moto knows none of it:
# it keeps the settings, and the layer validates them, plays the lifecycle stages through `drive`, and
# moves the weights in moto's own ELBv2 rules, so DescribeRules shows them as ALB would.

NATIVE_STRATEGIES = ("BLUE_GREEN", "CANARY", "LINEAR")
# The record statuses StopServiceDeployment stops, and those in which it lets the stop already asked for
# go on (ECS's "Stopping Amazon ECS service deployments"); any other is a ConflictException.
STOPPABLE = ("PENDING", "IN_PROGRESS")
STOPPING = ("STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
# ECS's defaults for the strategies' settings (CanaryConfiguration, LinearConfiguration).
CANARY_DEFAULTS = {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 10}
LINEAR_DEFAULTS = {"stepPercent": 10.0, "stepBakeTimeInMinutes": 6}
MAX_BAKE_MINUTES = 1440


def strategy_of(config: Any) -> str:
    return (config or {}).get("strategy") or "ROLLING"


def elbv2_backend(account: str, region: str) -> Any:
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[account][region]


def listener_actions(backend: Any, arn: str) -> tuple[list, Any] | None:
    """The actions of a listener rule (an ALB's) or of a listener's default rule (an NLB's listener),
    with its load balancer; None when there is no such rule or listener."""
    for lb in backend.load_balancers.values():
        for listener in lb.listeners.values():
            if listener.arn == arn:
                return listener.default_actions, lb
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return rule.actions, lb
    return None


def forward_groups(actions: list) -> list[dict[str, Any]] | None:
    """The weighted target groups of the (only) forward action, or None if it has no ForwardConfig."""
    forward = [a for a in actions if a.type == "forward"]
    if len(forward) != 1 or "ForwardConfig" not in forward[0].data:
        return None
    return forward[0].data["ForwardConfig"].setdefault("TargetGroups", [])


def is_multiple_of_tenth(value: float) -> bool:
    return abs(value * 10 - round(value * 10)) < 1e-6


def check_deployment_configuration(config: Any, controller: Any) -> None:
    """ECS's checks of the strategy settings themselves (with or without a load balancer)."""
    from moto.ecs.exceptions import InvalidParameterException

    config = config or {}
    strategy = strategy_of(config)
    if strategy not in ("ROLLING",) + NATIVE_STRATEGIES:
        raise InvalidParameterException(
            f"Invalid deployment strategy '{strategy}'. Valid values are ROLLING, BLUE_GREEN, LINEAR and CANARY."
        )
    if strategy != "CANARY" and config.get("canaryConfiguration") is not None:
        raise InvalidParameterException("canaryConfiguration can only be specified with the CANARY deployment strategy.")
    if strategy != "LINEAR" and config.get("linearConfiguration") is not None:
        raise InvalidParameterException("linearConfiguration can only be specified with the LINEAR deployment strategy.")
    if strategy == "ROLLING":
        return
    if (controller or {}).get("type", "ECS") != "ECS":
        raise InvalidParameterException(
            f"The {strategy} deployment strategy requires the ECS deployment controller, not {controller['type']}."
        )
    bake = config.get("bakeTimeInMinutes")
    if bake is None and strategy == "BLUE_GREEN":
        raise InvalidParameterException("bakeTimeInMinutes is required with the BLUE_GREEN deployment strategy.")
    if bake is not None and not 0 <= int(bake) <= MAX_BAKE_MINUTES:
        raise InvalidParameterException(f"bakeTimeInMinutes must be between 0 and {MAX_BAKE_MINUTES}, not {bake}.")
    if strategy == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        percent = float(canary.get("canaryPercent", CANARY_DEFAULTS["canaryPercent"]))
        if not (0.1 <= percent <= 100.0 and is_multiple_of_tenth(percent)):
            raise InvalidParameterException(f"canaryPercent must be a multiple of 0.1 from 0.1 to 100.0, not {percent}.")
        minutes = int(canary.get("canaryBakeTimeInMinutes", CANARY_DEFAULTS["canaryBakeTimeInMinutes"]))
        if not 0 <= minutes <= MAX_BAKE_MINUTES:
            raise InvalidParameterException(f"canaryBakeTimeInMinutes must be between 0 and {MAX_BAKE_MINUTES}, not {minutes}.")
    if strategy == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        percent = float(linear.get("stepPercent", LINEAR_DEFAULTS["stepPercent"]))
        if not (3.0 <= percent <= 100.0 and is_multiple_of_tenth(percent)):
            raise InvalidParameterException(f"stepPercent must be a multiple of 0.1 from 3.0 to 100.0, not {percent}.")
        minutes = int(linear.get("stepBakeTimeInMinutes", LINEAR_DEFAULTS["stepBakeTimeInMinutes"]))
        if not 0 <= minutes <= MAX_BAKE_MINUTES:
            raise InvalidParameterException(f"stepBakeTimeInMinutes must be between 0 and {MAX_BAKE_MINUTES}, not {minutes}.")


def create_role(account: str, name: str, service: str) -> str:
    """An IAM role `service` may assume (the infrastructure role of a native deployment, say), made in
    moto's IAM so ECS's checks find it; an existing one is answered as it is."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    existing = next((r for r in backend.roles.values() if r.name == name), None)
    if existing is not None:
        return existing.arn
    trust = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })
    return backend.create_role(name, trust, "/", None, "", [], None).arn


def check_native(account: str, region: str, config: Any, load_balancers: Any, controller: Any) -> None:
    """ECS's checks of a service with a native strategy behind a load balancer: each load balancer names
    an alternate target group, a production listener rule (and maybe a test one) that forwards to both
    target groups, and a role ECS assumes to move the weights. All must exist."""
    from moto.ecs.exceptions import InvalidParameterException
    from moto.iam.models import iam_backends

    check_deployment_configuration(config, controller)
    strategy = strategy_of(config)
    if strategy == "ROLLING":
        return
    elb = elbv2_backend(account, region)
    for lb in load_balancers or []:
        adv = lb.get("advancedConfiguration")
        if not adv:
            raise InvalidParameterException(
                f"advancedConfiguration is required for each load balancer with the {strategy} deployment strategy."
            )
        missing = [k for k in ("alternateTargetGroupArn", "productionListenerRule", "roleArn") if not adv.get(k)]
        if missing:
            raise InvalidParameterException(f"advancedConfiguration requires {', '.join(missing)}.")
        primary_tg, alternate = lb.get("targetGroupArn"), adv["alternateTargetGroupArn"]
        if not primary_tg:
            raise InvalidParameterException(f"targetGroupArn is required with the {strategy} deployment strategy.")
        for arn in (primary_tg, alternate):
            if arn not in elb.target_groups:
                raise InvalidParameterException(f"Unable to find target group {arn}.")
        if alternate == primary_tg:
            raise InvalidParameterException("alternateTargetGroupArn must be different from targetGroupArn.")
        role = adv["roleArn"]
        m = re.fullmatch(r"arn:aws[\w-]*:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)", role)
        roles = iam_backends[m.group(1)]["aws"].roles.values() if m else []
        if not any(r.name == m.group(2) for r in roles):
            raise InvalidParameterException(f"Unable to assume role {role}: the role does not exist.")
        for key in ("productionListenerRule", "testListenerRule"):
            arn = adv.get(key)
            if not arn:
                continue
            found = listener_actions(elb, arn)
            if found is None:
                raise InvalidParameterException(f"Unable to find listener rule {arn} ({key}).")
            actions, balancer = found
            if balancer.type == "application" and ":listener-rule/" not in arn:
                raise InvalidParameterException(
                    f"The {key} of an Application Load Balancer must be a listener rule ARN, not the listener {arn}."
                )
            if strategy in ("CANARY", "LINEAR") and balancer.type != "application":
                raise InvalidParameterException(
                    f"The {strategy} deployment strategy requires an Application Load Balancer listener rule as {key}."
                )
            if any(a.type != "forward" for a in actions):
                raise InvalidParameterException(
                    f"The {key} {arn} has actions other than forward; ECS shifts traffic only on a rule whose only action is a forward."
                )
            groups = forward_groups(actions)
            forwarded = sorted(g["TargetGroupArn"] for g in groups or [])
            if forwarded != sorted([primary_tg, alternate]):
                raise InvalidParameterException(
                    f"The {key} {arn} must forward (ForwardConfig.TargetGroups) to both the target group "
                    f"{primary_tg} and the alternate target group {alternate}, and to no other."
                )


def weight_of(percent: float) -> int:
    """An ALB weight (0..999, used here as 0..100) for a share of traffic: a share above 0 keeps at least 1."""
    if percent <= 0:
        return 0
    return min(100, max(1, round(percent)))


def set_weights(account: str, region: str, rule_arn: str, weights: dict[str, int]) -> None:
    """Set the weights of a rule's forward action in moto's ELBv2, as ECS does through ModifyRule."""
    found = listener_actions(elbv2_backend(account, region), rule_arn)
    if found is None:
        return  # deleted since: ECS would fail the deployment; the test sees the weights never move
    groups = forward_groups(found[0])
    if groups is None:
        return
    for g in groups:
        if g["TargetGroupArn"] in weights:
            g["Weight"] = weights[g["TargetGroupArn"]]


def read_weights(account: str, region: str, rule_arns: list[str]) -> dict[str, int]:
    """The weights the rules forward with now, by target group ARN (as DescribeRules shows them)."""
    elb = elbv2_backend(account, region)
    out: dict[str, int] = {}
    for arn in rule_arns:
        found = listener_actions(elb, arn)
        for g in (forward_groups(found[0]) if found else None) or []:
            out[g["TargetGroupArn"]] = int(g.get("Weight", 1))
    return out


def shift(native: dict[str, Any], production: float | None = None, test: float | None = None) -> None:
    """Give the green target groups `production` (and `test`) percent of their rules' traffic."""
    for lb in native["loadBalancers"]:
        if production is not None:
            g = weight_of(production)
            set_weights(native["account"], native["region"], lb["productionListenerRule"], {lb["green"]: g, lb["blue"]: 100 - g})
        if test is not None and lb.get("testListenerRule"):
            g = weight_of(test)
            set_weights(native["account"], native["region"], lb["testListenerRule"], {lb["green"]: g, lb["blue"]: 100 - g})
    if production is not None:
        native["productionPercent"] = production
    if test is not None:
        native["testPercent"] = test


def enter_stage(record: dict[str, Any], stage: str) -> None:
    now = layer_now(record["_native"]["account"])
    record["lifecycleStage"] = stage
    record["updatedAt"] = now
    native = record["_native"]
    native["stageStartedAt"] = now
    native["stages"].append({"stage": stage, "startedAt": now})


def start_native(svc: Any, dep: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Give a new deployment of a service with a native strategy its lifecycle: `previous` was PRIMARY.
    A deployment that replaces one still shifting traffic sends the traffic back to that one's blue,
    stops it, and starts in RECONCILE_SERVICE."""
    record = record_of(svc, dep["id"])
    if record is None or previous is None:
        return
    config = json.loads(json.dumps(getattr(svc, "deployment_configuration", None) or {}))
    blue_id, stage = previous["id"], "PRE_SCALE_UP"
    replaced = record_of(svc, previous["id"])
    if replaced is not None and replaced.get("_native") and replaced["status"] == "IN_PROGRESS":
        old = replaced["_native"]
        shift(old, production=0.0, test=0.0)
        now = utcnow()
        replaced.update(
            status="STOPPED",
            statusReason=f"ECS deployment {previous['id']} was replaced by deployment {dep['id']}.",
            stoppedAt=now,
            finishedAt=now,
            updatedAt=now,
            _final=True,
        )
        previous["rolloutStateReason"] = replaced["statusReason"]
        blue_id, stage = old["blue"], "RECONCILE_SERVICE"
    lbs = []
    for lb in svc.load_balancers or []:
        adv = lb.get("advancedConfiguration") or {}
        if lb.get("targetGroupArn") and adv.get("alternateTargetGroupArn"):
            lbs.append({
                "containerName": lb.get("containerName"),
                "containerPort": lb.get("containerPort"),
                # The alternate target group takes the new tasks; the primary one keeps the old.
                "green": adv["alternateTargetGroupArn"],
                "blue": lb["targetGroupArn"],
                "productionListenerRule": adv.get("productionListenerRule"),
                "testListenerRule": adv.get("testListenerRule"),
            })
    record["_native"] = {
        "strategy": strategy_of(config),
        "config": config,
        "account": svc._account_id,
        "region": svc.region_name,
        "blue": blue_id,
        "loadBalancers": lbs,
        "productionPercent": 0.0,
        "testPercent": 0.0,
        "stages": [],
    }
    enter_stage(record, stage)


def next_production_percent(native: dict[str, Any]) -> float:
    current, strategy, config = native["productionPercent"], native["strategy"], native["config"]
    if strategy == "CANARY" and current == 0:
        return float((config.get("canaryConfiguration") or {}).get("canaryPercent", CANARY_DEFAULTS["canaryPercent"]))
    if strategy == "LINEAR":
        step = float((config.get("linearConfiguration") or {}).get("stepPercent", LINEAR_DEFAULTS["stepPercent"]))
        return min(100.0, round(current + step, 1))
    return 100.0


def deployment_by_id(svc: Any, deployment_id: str) -> dict[str, Any] | None:
    return next((d for d in svc.deployments if d["id"] == deployment_id), None)


def count_service(svc: Any) -> None:
    svc.running_count = sum(d.get("runningCount", 0) for d in svc.deployments)
    svc.pending_count = sum(d.get("pendingCount", 0) for d in svc.deployments)


def tg_name(arn: str) -> str:
    return arn.split(":targetgroup/")[-1].split("/")[0]


def progress_native(svc: Any, dep: dict[str, Any], record: dict[str, Any], name: str, body: dict) -> None:
    """One step of a native deployment's lifecycle (see the module docstring)."""
    native, stage = record["_native"], record["lifecycleStage"]
    desired = svc.desired_count
    if stage in ("PRE_SCALE_UP", "RECONCILE_SERVICE") or (stage == "SCALE_UP" and dep["runningCount"] < desired):
        if stage == "RECONCILE_SERVICE":
            # The replaced deployment's tasks stop; only blue and green remain.
            for d in [d for d in svc.deployments if d["id"] not in (dep["id"], native["blue"])]:
                add_event(svc, f"{name} has stopped {d.get('runningCount', 0)} running tasks: (task {uuid.uuid4().hex[:32]}).")
                svc.deployments.remove(d)
        running = min(int(body.get("running", desired)), desired)
        dep["runningCount"] = max(running, dep.get("runningCount", 0))
        dep["pendingCount"] = desired - dep["runningCount"]
        add_event(svc, f"{name} has started {dep['runningCount']} tasks: (task {uuid.uuid4().hex[:32]}).")
        if stage != "SCALE_UP":
            enter_stage(record, "SCALE_UP")
    elif stage == "SCALE_UP" and any(lb.get("testListenerRule") for lb in native["loadBalancers"]):
        shift(native, test=100.0)
        enter_stage(record, "TEST_TRAFFIC_SHIFT")
        greens = ", ".join(tg_name(lb["green"]) for lb in native["loadBalancers"] if lb.get("testListenerRule"))
        add_event(svc, f"{name} (deployment {dep['id']}) shifted 100% of test traffic to target group {greens}.")
    elif stage == "PRODUCTION_TRAFFIC_SHIFT" and native["productionPercent"] < 100 and not baked(native, step_bake(native)):
        # ECS holds each canary or linear step for its bake time (on the test clock) before the next one.
        pass
    elif stage in ("SCALE_UP", "TEST_TRAFFIC_SHIFT") or (stage == "PRODUCTION_TRAFFIC_SHIFT" and native["productionPercent"] < 100):
        percent = next_production_percent(native)
        shift(native, production=percent)
        if stage != "PRODUCTION_TRAFFIC_SHIFT":
            enter_stage(record, "PRODUCTION_TRAFFIC_SHIFT")
        else:
            native["stageStartedAt"] = layer_now(native["account"])  # each step starts its own bake
            native["stages"].append({"stage": stage, "startedAt": native["stageStartedAt"]})
        greens = ", ".join(tg_name(lb["green"]) for lb in native["loadBalancers"]) or "none"
        add_event(svc, f"{name} (deployment {dep['id']}) shifted {percent:g}% of production traffic to target group {greens}.")
    elif stage == "PRODUCTION_TRAFFIC_SHIFT":
        enter_stage(record, "BAKE_TIME")
        bake = int(native["config"].get("bakeTimeInMinutes") or 0)
        add_event(svc, f"{name} (deployment {dep['id']}) is baking for {bake} minutes before the old tasks stop.")
    # BAKE_TIME: nothing moves until the deployment is completed (or rolled back).
    dep["updatedAt"] = utcnow()
    count_service(svc)


def step_bake(native: dict[str, Any]) -> int:
    """The bake time of a canary or linear step, in minutes (none for BLUE_GREEN's single step)."""
    config, strategy = native["config"], native["strategy"]
    if strategy == "CANARY":
        return int((config.get("canaryConfiguration") or {}).get("canaryBakeTimeInMinutes", CANARY_DEFAULTS["canaryBakeTimeInMinutes"]))
    if strategy == "LINEAR":
        return int((config.get("linearConfiguration") or {}).get("stepBakeTimeInMinutes", LINEAR_DEFAULTS["stepBakeTimeInMinutes"]))
    return 0


def complete_native(svc: Any, dep: dict[str, Any], record: dict[str, Any], name: str) -> None:
    """The bake time is over: blue stops, and ECS swaps the target groups of each load balancer."""
    native = record["_native"]
    if record["lifecycleStage"] != "BAKE_TIME":
        raise ValueError(
            f"deployment {dep['id']} is in {record['lifecycleStage']}: a native deployment completes only after "
            f"BAKE_TIME (drive progress until then)"
        )
    bake = int(native["config"].get("bakeTimeInMinutes") or 0)
    if not baked(native, bake):
        raise ValueError(
            f"deployment {dep['id']} bakes for {bake} minutes on the test clock and has not yet: advance the "
            f"clock (drive action advance) before completing it"
        )
    enter_stage(record, "CLEAN_UP")
    desired = svc.desired_count
    for d in [d for d in svc.deployments if d is not dep]:
        add_event(svc, f"{name} has stopped {d.get('runningCount', 0)} running tasks: (task {uuid.uuid4().hex[:32]}).")
    dep.update(runningCount=desired, pendingCount=0, rolloutState="COMPLETED", updatedAt=utcnow())
    dep["rolloutStateReason"] = f"ECS deployment {dep['id']} completed."
    svc.deployments[:] = [dep]
    swapped = []
    for lb in svc.load_balancers or []:
        adv = lb.get("advancedConfiguration") or {}
        match = next(
            (n for n in native["loadBalancers"] if n["blue"] == lb.get("targetGroupArn") and n["green"] == adv.get("alternateTargetGroupArn")),
            None,
        )
        if match is None:
            swapped.append(lb)
            continue
        swapped.append({**lb, "targetGroupArn": match["green"], "advancedConfiguration": {**adv, "alternateTargetGroupArn": match["blue"]}})
    svc.load_balancers = swapped
    # The new primary keeps all of both rules' traffic (the weights already say so after the shifts).
    shift(native, production=100.0, test=100.0)
    count_service(svc)
    add_event(svc, f"{name} (deployment {dep['id']}) deployment completed.")
    add_event(svc, f"{name} has reached a steady state.")


def rollback_native(svc: Any, dep: dict[str, Any], record: dict[str, Any], name: str, reason: str, status: str) -> None:
    """Send all traffic back to blue, which still runs, and drop green: ECS starts no new deployment.
    `status` is the record's: ROLLBACK_SUCCESSFUL, or STOPPED when no rollback was asked for."""
    native = record["_native"]
    blue = deployment_by_id(svc, native["blue"])
    if blue is None:
        raise ValueError(f"the blue deployment {native['blue']} of {dep['id']} is gone")
    shift(native, production=0.0, test=0.0)
    now = utcnow()
    dep.update(runningCount=0, pendingCount=0, rolloutState="FAILED", updatedAt=now)
    dep["rolloutStateReason"] = f"ECS deployment {dep['id']} {'rolled back' if status.startswith('ROLLBACK') else 'stopped'}: {reason}."
    add_event(svc, f"{name} (deployment {dep['id']}) deployment failed: {reason}.")
    svc.deployments[:] = [blue]
    blue.update(status="PRIMARY", rolloutState="COMPLETED", updatedAt=now)
    blue["rolloutStateReason"] = f"ECS deployment {blue['id']} completed."
    svc.task_definition = blue["taskDefinition"]
    count_service(svc)
    native["failedAtStage"] = record["lifecycleStage"]
    enter_stage(record, "CLEAN_UP")
    record.update(status=status, statusReason=dep["rolloutStateReason"], finishedAt=now, updatedAt=now, _final=True)
    if status == "STOPPED":
        record["stoppedAt"] = now
    else:
        blue_record = record_of(svc, blue["id"])
        record["rollback"] = {
            "reason": reason,
            "startedAt": now,
            "serviceRevisionArn": blue_record["targetServiceRevisionArn"] if blue_record else None,
        }
        add_event(svc, f"{name} rolling back to deployment {blue['id']}: {reason}.")
    add_event(svc, f"{name} has stopped {svc.desired_count} running tasks: (task {uuid.uuid4().hex[:32]}).")


def drive_native(body: dict, svc: Any, dep: dict[str, Any], record: dict[str, Any], name: str) -> None:
    """`drive` for a deployment with a native strategy."""
    action = body["action"]
    if action == "progress":
        progress_native(svc, dep, record, name, body)
    elif action == "complete" and (firing := firing_deployment_alarms(body, svc)):
        rollback_native(svc, dep, record, name, f"alarm(s) detected: {', '.join(firing)}", "ROLLBACK_SUCCESSFUL")
    elif action == "complete":
        complete_native(svc, dep, record, name)
    elif action in ("fail", "rollback"):
        reason = body.get("reason", "Essential container in task exited")
        failed = int(body.get("failedTasks", 3))
        dep["failedTasks"] = dep.get("failedTasks", 0) + failed
        for _ in range(min(failed, 3)):
            add_event(svc, f"{name} (task {uuid.uuid4().hex[:32]}) stopped: {reason}.")
        # With rollback off, ECS stops the deployment (STOPPED); blue keeps the traffic either way.
        status = "ROLLBACK_SUCCESSFUL" if action == "rollback" else "STOPPED"
        rollback_native(svc, dep, record, name, "tasks failed to start (circuit breaker)", status)


def native_answer(svc: Any, record: dict[str, Any] | None) -> dict[str, Any]:
    """What `drive` adds for a service with a native strategy: the stage, and the weights of the
    production (and test) listener rules by target group."""
    native = (record or {}).get("_native")
    if native is not None:
        prod = [lb["productionListenerRule"] for lb in native["loadBalancers"] if lb.get("productionListenerRule")]
        test = [lb["testListenerRule"] for lb in native["loadBalancers"] if lb.get("testListenerRule")]
    else:
        advs = [lb.get("advancedConfiguration") or {} for lb in svc.load_balancers or []]
        prod = [a["productionListenerRule"] for a in advs if a.get("productionListenerRule")]
        test = [a["testListenerRule"] for a in advs if a.get("testListenerRule")]
    account, region = svc._account_id, svc.region_name
    return {
        "lifecycleStage": (record or {}).get("lifecycleStage"),
        "weights": read_weights(account, region, prod),
        "testWeights": read_weights(account, region, test),
    }


# ---- ECS service deployments: Describe and Stop --------------------------------------------------

def find_record(account: str | None, region: str | None, arn: str) -> dict[str, Any] | None:
    for records in SERVICE_DEPLOYMENTS.values():
        for r in records:
            if r["serviceDeploymentArn"] == arn and r["_service"][0] == account and r["_service"][1] == region:
                return r
    return None


def revision_summary(svc: Any, deployment_id: str, arn: str, weights: tuple[float, float | None] | None) -> dict[str, Any]:
    """ECS's ServiceRevisionSummary: the task counts of the revision's deployment now (0 once it is
    gone) and, for a native deployment, the traffic it was given."""
    d = deployment_by_id(svc, deployment_id) if svc is not None else None
    out: dict[str, Any] = {
        "arn": arn,
        "requestedTaskCount": d.get("desiredCount", 0) if d else 0,
        "runningTaskCount": d.get("runningCount", 0) if d else 0,
        "pendingTaskCount": d.get("pendingCount", 0) if d else 0,
    }
    if weights is not None:
        out["requestedProductionTrafficWeight"] = weights[0]
        if weights[1] is not None:
            out["requestedTestTrafficWeight"] = weights[1]
    return out


def render_deployment(r: dict[str, Any]) -> dict[str, Any]:
    """A record as ECS's ServiceDeployment."""
    try:
        svc = find_service(*r["_service"])
    except KeyError:
        svc = None
    native = r.get("_native")
    green = (native["productionPercent"], native["testPercent"]) if native else None
    blue = (100.0 - green[0], 100.0 - green[1]) if green else None
    if native and not any(lb.get("testListenerRule") for lb in native["loadBalancers"]):
        green, blue = (green[0], None), (blue[0], None)  # no test traffic at all
    out = {
        k: epoch(v)
        for k, v in r.items()
        if not k.startswith("_") and k != "targetServiceRevisionArn" and v is not None
    }
    if isinstance(out.get("rollback"), dict):
        out["rollback"] = {k: epoch(v) for k, v in out["rollback"].items() if v is not None}
    out["targetServiceRevision"] = revision_summary(svc, r["_deploymentId"], r["targetServiceRevisionArn"], green)
    out["sourceServiceRevisions"] = [
        revision_summary(svc, s["deploymentId"], s["arn"], blue if native and s["deploymentId"] == native["blue"] else None)
        for s in r.get("_sources", [])
    ]
    return out


def describe_service_deployments(call: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    """ECS DescribeServiceDeployments: the layer's records in ECS's ServiceDeployment shape; unknown ARNs
    are failures (MISSING), as in DescribeServiceRevisions."""
    body = json.loads(read_body(environ) or b"{}")
    arns = body.get("serviceDeploymentArns")
    if not arns or not isinstance(arns, list):
        return ecs_response(400, {"message": "serviceDeploymentArns can not be empty."}, "InvalidParameterException")
    found, failures = [], []
    for arn in arns:
        r = find_record(call["account"], call["region"], arn)
        if r is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(render_deployment(r))
    return ecs_response(200, {"serviceDeployments": found, "failures": failures})


def stop_service_deployment(call: dict[str, Any], environ: dict[str, Any]) -> tuple[str, list, bytes]:
    """ECS StopServiceDeployment. ROLLBACK (the default) of a native deployment sends the traffic back to
    blue at once (ROLLBACK_SUCCESSFUL); of a rolling one, starts a deployment of the last good revision as
    the circuit breaker does (ROLLBACK_IN_PROGRESS). ABORT stops it without rollback (STOPPED). A deployment
    that is over cannot be stopped (ConflictException); one already stopping goes on (no-op)."""
    body = json.loads(read_body(environ) or b"{}")
    arn = body.get("serviceDeploymentArn")
    stop_type = body.get("stopType") or "ROLLBACK"
    if not arn:
        return ecs_response(400, {"message": "serviceDeploymentArn can not be empty."}, "InvalidParameterException")
    if stop_type not in ("ABORT", "ROLLBACK"):
        return ecs_response(400, {"message": f"Invalid stopType '{stop_type}'. Valid values are ABORT and ROLLBACK."}, "InvalidParameterException")
    r = find_record(call["account"], call["region"], arn)
    if r is None:
        return ecs_response(400, {"message": f"Service deployment {arn} not found."}, "ServiceDeploymentNotFoundException")
    if r["status"] in STOPPING:
        return ecs_response(200, {"serviceDeploymentArn": arn})
    conflict = f"Service deployment {arn} is {r['status']} and can no longer be stopped."
    if r["status"] not in STOPPABLE:
        return ecs_response(400, {"message": conflict}, "ConflictException")
    try:
        svc = find_service(*r["_service"])
    except KeyError:
        return ecs_response(400, {"message": conflict}, "ConflictException")
    dep = deployment_by_id(svc, r["_deploymentId"])
    if dep is None or dep["status"] != "PRIMARY":
        return ecs_response(400, {"message": conflict}, "ConflictException")
    name = f"(service {svc.name})"
    reason = "deployment stopped by StopServiceDeployment"
    if r.get("_native"):
        rollback_native(svc, dep, r, name, reason, "ROLLBACK_SUCCESSFUL" if stop_type == "ROLLBACK" else "STOPPED")
    elif stop_type == "ROLLBACK":
        try:
            rollback_deployment(svc, dep, name, {}, reason)
        except ValueError as exc:
            return ecs_response(400, {"message": f"Service deployment {arn} cannot be rolled back: {exc}."}, "ConflictException")
    else:
        now = utcnow()
        dep.update(rolloutState="FAILED", pendingCount=0, updatedAt=now)
        dep["rolloutStateReason"] = f"ECS deployment {dep['id']} stopped: {reason}."
        add_event(svc, f"{name} (deployment {dep['id']}) deployment stopped: {reason}.")
    note_deployments(svc)
    r["updatedAt"] = utcnow()
    return ecs_response(200, {"serviceDeploymentArn": arn})


# ---- ECR scans -----------------------------------------------------------------------------------

# (account, region, repository, digest) -> {"status": ..., "counts": {severity: n}}
SCANS: dict[tuple[str, str, str, str], dict[str, Any]] = {}


def patch_ecr() -> None:
    """Scan on push completes with no findings; scans set through /_ecsop/ecr/scan are reported."""
    from moto.ecr import models, responses

    original_put = models.ECRBackend.put_image

    def put_image(self: Any, repository_name: str, *args: Any, **kwargs: Any) -> Any:
        image = original_put(self, repository_name, *args, **kwargs)
        repo = self.repositories.get(repository_name)
        if repo is not None and (repo.image_scanning_configuration or {}).get("scanOnPush"):
            key = (self.account_id, self.region_name, repository_name, image.image_digest)
            SCANS.setdefault(key, {"status": "COMPLETE", "counts": {}})
        return image

    models.ECRBackend.put_image = put_image

    original_describe = responses.ECRResponse.describe_image_scan_findings

    def describe_image_scan_findings(self: Any) -> Any:
        backend = self.ecr_backend
        repository = self._get_param("repositoryName")
        image_id = self._get_param("imageId") or {}
        digest = image_id.get("imageDigest")
        if digest is None and image_id.get("imageTag"):
            repo = backend.repositories.get(repository)
            found = [i for i in (repo.images if repo else []) if image_id["imageTag"] in i.image_tags]
            digest = found[0].image_digest if found else None
        scan = SCANS.get((backend.account_id, backend.region_name, repository, digest or ""))
        if scan is None:
            return original_describe(self)
        answer: dict[str, Any] = {
            "registryId": backend.account_id,
            "repositoryName": repository,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": scan["status"], "description": f"The scan is {scan['status'].lower()}."},
        }
        if scan["status"] == "COMPLETE":
            answer["imageScanFindings"] = {"findings": [], "findingSeverityCounts": scan["counts"]}
        return json.dumps(answer)

    responses.ECRResponse.describe_image_scan_findings = describe_image_scan_findings


def patch_servicediscovery() -> None:
    """Cloud Map: one service per name in a namespace, and CreatorRequestId making CreateService
    idempotent. moto makes a second service of the same name for every CreateService."""
    from moto.core.exceptions import JsonRESTError
    from moto.servicediscovery import models

    original_create = models.ServiceDiscoveryBackend.create_service

    def create_service(self: Any, name: str, namespace_id: str, creator_request_id: str, *args: Any, **kw: Any) -> Any:
        for existing in self.services.values():
            if existing.name == name and existing.namespace_id == namespace_id:
                if creator_request_id and existing.creator_request_id == creator_request_id:
                    return existing
                raise JsonRESTError("ServiceAlreadyExists", f"Service already exists. ServiceId: {existing.id}")
        return original_create(self, name, namespace_id, creator_request_id, *args, **kw)

    models.ServiceDiscoveryBackend.create_service = create_service


def check_registries(registries: Any) -> None:
    """ECS refuses a Cloud Map binding with containerPort 0 (A records name the registry alone); moto
    takes anything."""
    from moto.ecs.exceptions import InvalidParameterException

    for r in registries or []:
        if "containerPort" in r and not (1 <= int(r["containerPort"]) <= 65535):
            raise InvalidParameterException("containerPort must be between 1 and 65535.")


# How many DescribeServices see a deleted service DRAINING, per account (0: INACTIVE at once), and the
# services draining now with the reads left, by (account, service ARN).
DRAIN_READS: dict[str, int] = {}
DRAINING: dict[tuple[str, str], int] = {}

# The clientToken each ECS service was created with, by (account, region, cluster, service).
CLIENT_TOKENS: dict[tuple[str, str, str, str], str] = {}


def patch_ecs() -> None:
    """Make CreateService keep its deployment settings and UpdateService start deployments."""
    from moto.core.utils import camelcase_to_underscores
    from moto.ecs import models, responses

    kept = [
        "deploymentConfiguration",
        "healthCheckGracePeriodSeconds",
        "enableECSManagedTags",
        "enableExecuteCommand",
        "capacityProviderStrategy",
        "placementConstraints",
        "placementStrategy",
    ]
    original_create = responses.EC2ContainerServiceResponse.create_service
    from moto.ecs.exceptions import InvalidParameterException

    def create_service(self: Any) -> Any:
        # ECS: CreateService of a service that exists (ACTIVE or DRAINING) is refused, unless it repeats
        # the call that created it with the same clientToken, which answers the service it made. moto
        # replaces the service instead.
        cluster = self._get_param("cluster", "default").split("/")[-1]
        name = self._get_param("serviceName")
        key = (self.current_account, self.region, cluster, name)
        token = self._get_param("clientToken")
        try:
            existing = self.ecs_backend._get_service(cluster, name)
        except Exception:
            existing = None
        if existing is not None and existing.status != "INACTIVE":
            if token and CLIENT_TOKENS.get(key) == token:
                from moto.core.responses import ActionResult

                return ActionResult({"service": existing})
            raise InvalidParameterException("Creation of service was not idempotent.")
        check_registries(self._get_param("serviceRegistries"))
        check_bound(self.current_account, self._get_param("loadBalancers"))
        check_native(
            self.current_account,
            self.region,
            self._get_param("deploymentConfiguration"),
            self._get_param("loadBalancers"),
            self._get_param("deploymentController"),
        )
        result = original_create(self)
        SERVICE_CREATED[key] = time.monotonic()
        if token:
            CLIENT_TOKENS[key] = token
        svc = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        for key in kept:
            value = self._get_param(key)
            if value is not None:
                setattr(svc, camelcase_to_underscores(key), value)
        # After the settings: the first deployment's record keeps its deploymentConfiguration.
        note_deployments(svc)
        return result

    responses.EC2ContainerServiceResponse.create_service = create_service

    original_update = models.EC2ContainerServiceBackend.update_service

    def wiring(svc: Any, aliases: dict[str, str] | None = None) -> str:
        # advancedConfiguration is not wiring: ECS starts no deployment when only it changes. A native
        # deployment swaps each load balancer's target group with its alternate; `aliases` (alternate ->
        # target group, from before the update) makes either order the same wiring.
        balancers = []
        for lb in svc.load_balancers or []:
            lb = {k: v for k, v in lb.items() if k != "advancedConfiguration"}
            if aliases and lb.get("targetGroupArn") in aliases:
                lb["targetGroupArn"] = aliases[lb["targetGroupArn"]]
            balancers.append(lb)
        return json.dumps(
            [balancers, svc.service_registries, getattr(svc, "network_configuration", None) or {}],
            sort_keys=True,
            default=str,
        )

    def alternates(svc: Any) -> dict[str, str]:
        return {
            adv["alternateTargetGroupArn"]: lb["targetGroupArn"]
            for lb in svc.load_balancers or []
            if (adv := lb.get("advancedConfiguration") or {}).get("alternateTargetGroupArn") and lb.get("targetGroupArn")
        }

    def update_service(self: Any, props: dict[str, Any]) -> Any:
        check_registries(props.get("service_registries"))
        check_bound(self.account_id, props.get("load_balancers"))
        cluster = props.get("cluster", "default")
        name = props.get("service", "").split("/")[-1]
        svc = self._get_service(cluster, name)
        if any(props.get(k) is not None for k in ("deployment_configuration", "load_balancers", "deployment_controller")):
            # What the service will be: the request's settings over the service's.
            check_native(
                self.account_id,
                self.region_name,
                props["deployment_configuration"] if props.get("deployment_configuration") is not None else getattr(svc, "deployment_configuration", None),
                props["load_balancers"] if props.get("load_balancers") is not None else svc.load_balancers,
                props.get("deployment_controller") or svc.deployment_controller,
            )
        before_td = svc.task_definition
        before_running = svc.running_count
        aliases = alternates(svc)
        before_wiring = wiring(svc, aliases)
        before_primary = next((d for d in svc.deployments if d["status"] == "PRIMARY"), None)
        requested = props.get("task_definition")
        desired = props.get("desired_count")
        forced = bool(props.get("force_new_deployment"))
        kept = {k: before_primary[k] for k in ("id", "createdAt", "updatedAt")} if before_primary else {}
        svc = original_update(self, props)
        # moto "forces" a deployment by renaming the first deployment in place; the layer starts a real
        # one below, and the old deployment keeps its identity (and its record).
        if before_primary is not None:
            before_primary.update(kept)
        # ECS replaces deploymentConfiguration (alarms included) when UpdateService names it.
        if props.get("deployment_configuration") is not None:
            svc.deployment_configuration = props["deployment_configuration"]
        # moto sets running = desired at once; ECS does not: the deployment driver moves counts.
        svc.running_count = before_running
        if requested:
            svc.task_definition = self.describe_task_definition(requested).arn
        # ECS starts a deployment for a new task definition, and also for new load balancers, service
        # registries or network configuration, and when forced: the same revision, new tasks.
        if (requested and svc.task_definition != before_td) or wiring(svc, aliases) != before_wiring or forced:
            dep = start_deployment(svc, svc.task_definition, svc.launch_type)
            svc.pending_count = svc.desired_count
            note_deployments(svc)
            if strategy_of(getattr(svc, "deployment_configuration", None)) in NATIVE_STRATEGIES:
                # The old PRIMARY (blue) keeps running and serving while the new one goes through ECS's
                # lifecycle stages (`drive`).
                start_native(svc, dep, before_primary)
        elif desired is not None:
            dep = primary(svc)
            dep["desiredCount"] = desired
            if dep.get("rolloutState") == "COMPLETED":
                dep["runningCount"] = desired
                svc.running_count = desired
        return svc

    models.EC2ContainerServiceBackend.update_service = update_service

    # ECS keeps a deleted service DRAINING while its tasks stop and drain, then INACTIVE; moto makes it
    # INACTIVE at once. `DRAIN_READS[account]` DescribeServices see it DRAINING first.
    original_delete = models.EC2ContainerServiceBackend.delete_service
    original_describe = models.EC2ContainerServiceBackend.describe_services

    def delete_service(self: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        svc = original_delete(self, cluster_name, service_name, force)
        reads = DRAIN_READS.get(self.account_id, 0)
        if reads > 0:
            svc.status = "DRAINING"
            DRAINING[(self.account_id, svc.arn)] = reads
        return svc

    def describe_services(self: Any, cluster_str: str, names: list[str]) -> Any:
        result, failures = original_describe(self, cluster_str, names)
        for svc in result:
            key = (self.account_id, svc.arn)
            if key in DRAINING:
                if DRAINING[key] <= 0:
                    del DRAINING[key]
                    svc.status = "INACTIVE"
                else:
                    DRAINING[key] -= 1
        return result, failures

    models.EC2ContainerServiceBackend.delete_service = delete_service
    models.EC2ContainerServiceBackend.describe_services = describe_services


# ---- CloudWatch over Smithy RPC v2 CBOR ------------------------------------------------------------
#
# The Rust SDK for CloudWatch speaks only Smithy RPC v2 CBOR: POST /service/GraniteServiceVersion20100801/
# operation/<Operation>, headers `smithy-protocol: rpc-v2-cbor` and `Content-Type: application/cbor`,
# CBOR maps in and out, timestamps as tag 1 (epoch seconds, a float). moto 5.2.5 routes no such path, so
# the operations ecsop uses are decoded here and served by moto's CloudWatch backend (its model, ARNs and
# tagging), then answered in CBOR. Where moto's backend differs from AWS on these operations, the
# translation follows AWS (each place says so), because the adapter's design depends on that behaviour.

CBOR_HEADERS = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
# AWS's DescribeAlarms page size when MaxRecords is not given (moto itself never pages).
DESCRIBE_ALARMS_PAGE = 50


class CloudWatchError(Exception):
    """An error answered in CloudWatch's shape: HTTP status, error code (also the Query code)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def status_line(code: int) -> str:
    return f"{code} {http.HTTPStatus(code).phrase}"


def cbor_response(code: int, payload: dict[str, Any], extra: list | None = None) -> tuple[str, list, bytes]:
    body = cbor2.dumps(payload)
    headers = CBOR_HEADERS + [("x-amzn-RequestId", str(uuid.uuid4())), ("Content-Length", str(len(body)))]
    return status_line(code), headers + (extra or []), body


def cbor_error(code: int, name: str, message: str, query_error: str) -> tuple[str, list, bytes]:
    """An RPC v2 CBOR error: `__type` and `message` in the body, the Query code in a header."""
    return cbor_response(code, {"__type": name, "message": message}, [("x-amzn-query-error", query_error)])


def cloudwatch_backend(account: str | None, region: str | None) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    return cloudwatch_backends[account or DEFAULT_ACCOUNT_ID][region or "us-east-1"]


def timestamp(value: datetime | None) -> Any:
    """A CBOR timestamp (tag 1, epoch seconds as a float: the SDK reads only floats there)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # moto keeps naive UTC datetimes
    return cbor2.CBORTag(1, float(value.timestamp()))


def alarm_arn(backend: Any, name: str) -> str | None:
    alarm = backend.alarms.get(name)
    return alarm.alarm_arn if alarm else None


def alarm_of_arn(backend: Any, arn: str) -> Any:
    for alarm in backend.alarms.values():
        if alarm.alarm_arn == arn:
            return alarm
    # AWS: ListTagsForResource, TagResource and UntagResource of an unknown ARN fail (moto answers
    # ListTagsForResource with no tags, and UntagResource of an untagged alarm with this error).
    raise CloudWatchError(404, "ResourceNotFoundException", f"Resource {arn} not found")


def metric_alarm(alarm: Any) -> dict[str, Any]:
    def optional_int(value: Any) -> int | None:
        return None if value is None else int(value)

    fields = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm.alarm_arn,
        "AlarmDescription": alarm.description,
        "AlarmConfigurationUpdatedTimestamp": timestamp(alarm.configuration_updated_timestamp),
        "ActionsEnabled": bool(alarm.actions_enabled),
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "StateValue": alarm.state_value,
        "StateReason": alarm.state_reason,
        "StateReasonData": alarm.state_reason_data,
        "StateUpdatedTimestamp": timestamp(alarm.state_updated_timestamp),
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "Statistic": alarm.statistic,
        "ExtendedStatistic": alarm.extended_statistic,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        "Period": optional_int(alarm.period),
        "Unit": alarm.unit,
        "EvaluationPeriods": optional_int(alarm.evaluation_periods),
        "DatapointsToAlarm": optional_int(alarm.datapoints_to_alarm),
        # A CBOR float: the SDK decodes doubles from float encodings only.
        "Threshold": None if alarm.threshold is None else float(alarm.threshold),
        "ComparisonOperator": alarm.comparison_operator,
        "TreatMissingData": alarm.treat_missing_data,
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile,
        "ThresholdMetricId": alarm.threshold_metric_id,
    }
    return {k: v for k, v in fields.items() if v is not None}


def cw_put_metric_alarm(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    if req.get("Metrics"):
        raise CloudWatchError(400, "InvalidParameterValue", "ecsop_moto does not translate metric-math alarms")
    name = req["AlarmName"]
    previous = backend.alarms.get(name)
    # AWS applies Tags only when PutMetricAlarm creates the alarm; moto would re-apply them on every put.
    tags = None if previous else req.get("Tags")
    alarm = backend.put_metric_alarm(
        name=name,
        namespace=req.get("Namespace"),
        metric_name=req.get("MetricName"),
        comparison_operator=req.get("ComparisonOperator"),
        evaluation_periods=req.get("EvaluationPeriods"),
        period=req.get("Period"),
        threshold=req.get("Threshold"),
        statistic=req.get("Statistic"),
        description=req.get("AlarmDescription"),
        dimensions=req.get("Dimensions", []),
        alarm_actions=req.get("AlarmActions", []),
        datapoints_to_alarm=req.get("DatapointsToAlarm"),
        extended_statistic=req.get("ExtendedStatistic"),
        ok_actions=req.get("OKActions", []),
        insufficient_data_actions=req.get("InsufficientDataActions", []),
        unit=req.get("Unit"),
        actions_enabled=req.get("ActionsEnabled", True),
        treat_missing_data=req.get("TreatMissingData"),
        evaluate_low_sample_count_percentile=req.get("EvaluateLowSampleCountPercentile"),
        threshold_metric_id=req.get("ThresholdMetricId"),
        tags=tags,
    )
    if previous is None:
        # A new alarm starts in INSUFFICIENT_DATA in AWS (moto starts it in OK).
        alarm.state_value = "INSUFFICIENT_DATA"
    else:
        # moto makes a new alarm object; AWS leaves the state of a replaced alarm unchanged.
        for field in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp"):
            setattr(alarm, field, getattr(previous, field))
    return {}


def cw_describe_alarms(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    alarms = sorted(backend.alarms.values(), key=lambda a: a.name)  # AWS lists by name
    if req.get("AlarmNames"):
        alarms = [a for a in alarms if a.name in req["AlarmNames"]]
    if req.get("AlarmNamePrefix"):
        alarms = [a for a in alarms if a.name.startswith(req["AlarmNamePrefix"])]
    if req.get("StateValue"):
        alarms = [a for a in alarms if a.state_value == req["StateValue"]]
    if req.get("ActionPrefix"):
        alarms = [a for a in alarms if any(x.startswith(req["ActionPrefix"]) for x in a.alarm_actions or [])]
    # Without AlarmTypes AWS returns metric alarms only; composite alarms (moto's alarms with a rule) are
    # never created through this translation, so none is listed.
    types = req.get("AlarmTypes") or ["MetricAlarm"]
    alarms = [a for a in alarms if a.rule is None] if "MetricAlarm" in types else []
    # moto never pages; AWS does (50 by default), and the adapter must follow NextToken.
    size = int(req.get("MaxRecords") or DESCRIBE_ALARMS_PAGE)
    token = req.get("NextToken")
    if token is not None and not str(token).isdigit():
        raise CloudWatchError(400, "InvalidNextToken", "The service returned an invalid NextToken")
    start = int(token or 0)
    out: dict[str, Any] = {"MetricAlarms": [metric_alarm(a) for a in alarms[start : start + size]]}
    if "CompositeAlarm" in types:
        out["CompositeAlarms"] = []
    if start + size < len(alarms):
        out["NextToken"] = str(start + size)
    return out


def cw_delete_alarms(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    names = req.get("AlarmNames", [])
    arns = [arn for arn in (alarm_arn(backend, n) for n in names) if arn]
    backend.delete_alarms(names)  # unknown names are ignored, as in AWS
    # AWS deletes an alarm's tags with it; moto keeps them, and would give them to a new alarm of the name.
    for arn in arns:
        backend.tagger.delete_all_tags_for_resource(arn)
    return {}


def cw_list_tags_for_resource(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    arn = alarm_of_arn(backend, req["ResourceARN"]).alarm_arn
    tags = backend.list_tags_for_resource(arn)
    return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}


def cw_tag_resource(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    arn = alarm_of_arn(backend, req["ResourceARN"]).alarm_arn
    backend.tagger.tag_resource(arn, req.get("Tags", []))
    return {}


def cw_untag_resource(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    arn = alarm_of_arn(backend, req["ResourceARN"]).alarm_arn
    backend.tagger.untag_resource_using_names(arn, req.get("TagKeys", []))
    return {}


def cw_set_alarm_state(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    backend.set_alarm_state(req["AlarmName"], req.get("StateReason"), req.get("StateReasonData"), req["StateValue"])
    return {}


# Datapoints the test harness published (`/_ecsop/cloudwatch/metrics`), by (account, region): what an
# ALB publishes per target group. moto stores PutMetricData values one by one and computes no percentiles;
# these carry a count per value and answer GetMetricData with CloudWatch's statistics, percentiles included.
METRICS: dict[tuple[str, str], list[dict[str, Any]]] = {}
METRIC_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


def epoch_seconds(value: Any) -> float:
    """A CBOR timestamp as cbor2 decodes it (a datetime for tag 1) or a plain number, in epoch seconds."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return float(value)


def statistic(stat: str, samples: list[tuple[float, int]]) -> float | None:
    """CloudWatch's statistic of (value, count) samples; percentiles by nearest rank. The statistic is
    checked whether or not there is data, as CloudWatch does."""
    match = None
    if stat not in ("Sum", "SampleCount", "Average", "Minimum", "Maximum"):
        match = re.fullmatch(r"p(\d{1,2}(\.\d+)?|100)", stat)
        if not match:
            raise CloudWatchError(400, "InvalidParameterValue", f"The value {stat} for parameter Stat is not valid.")
    count = sum(c for _, c in samples)
    if count == 0:
        return None
    total = sum(v * c for v, c in samples)
    ordered = sorted(samples)
    if stat == "Sum":
        return total
    if stat == "SampleCount":
        return float(count)
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return ordered[0][0]
    if stat == "Maximum":
        return ordered[-1][0]
    assert match is not None
    rank = max(1, -(-float(match.group(1)) * count // 100))
    seen = 0
    for value, c in ordered:
        seen += c
        if seen >= rank:
            return value
    return ordered[-1][0]


def cw_get_metric_data(backend: Any, req: dict[str, Any]) -> dict[str, Any]:
    """GetMetricData over MetricStat queries, with CloudWatch's validation: ids, periods, the time range."""
    queries = req.get("MetricDataQueries") or []
    if not queries or len(queries) > 500:
        raise CloudWatchError(400, "InvalidParameterValue", "MetricDataQueries must hold 1 to 500 queries.")
    start, end = epoch_seconds(req["StartTime"]), epoch_seconds(req["EndTime"])
    if start >= end:
        raise CloudWatchError(400, "InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
    points = METRICS.get((backend.account_id, backend.region_name), [])
    results = []
    for query in queries:
        qid = query.get("Id", "")
        if not METRIC_ID.match(qid):
            raise CloudWatchError(400, "InvalidParameterValue", f"The value {qid} for parameter MetricDataQueries.member.Id is not valid.")
        stat = query.get("MetricStat")
        if stat is None:
            raise CloudWatchError(400, "InvalidParameterValue", "ecsop_moto answers MetricStat queries only, not expressions.")
        period = int(stat["Period"])
        if period < 60 and period not in (1, 5, 10, 30) or period >= 60 and period % 60:
            raise CloudWatchError(400, "InvalidParameterValue", f"The parameter Period must be 1, 5, 10, 30 or a multiple of 60, not {period}.")
        metric = stat["Metric"]
        dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}
        matching = [p for p in points if p["namespace"] == metric["Namespace"] and p["name"] == metric["MetricName"] and p["dimensions"] == dims]
        timestamps, values = [], []
        bucket = start
        while bucket < end:
            samples = [(p["value"], p["count"]) for p in matching if bucket <= p["at"] < min(bucket + period, end)]
            value = statistic(stat["Stat"], samples)
            if value is not None:
                timestamps.append(cbor2.CBORTag(1, float(bucket)))
                values.append(float(value))
            bucket += period
        results.append({"Id": qid, "Label": metric["MetricName"], "Timestamps": timestamps, "Values": values, "StatusCode": "Complete"})
    return {"MetricDataResults": results, "Messages": []}


CLOUDWATCH_OPERATIONS = {
    "GetMetricData": cw_get_metric_data,
    "PutMetricAlarm": cw_put_metric_alarm,
    "DescribeAlarms": cw_describe_alarms,
    "DeleteAlarms": cw_delete_alarms,
    "ListTagsForResource": cw_list_tags_for_resource,
    "TagResource": cw_tag_resource,
    "UntagResource": cw_untag_resource,
    "SetAlarmState": cw_set_alarm_state,
}


def serve_rpc_v2_cbor(call: dict[str, Any], body: bytes) -> tuple[str, list, bytes]:
    """Answer one RPC v2 CBOR call (CloudWatch's, the only service the SDK sends them to here)."""
    handler = CLOUDWATCH_OPERATIONS.get(call["operation"]) if call["rpcService"] == CLOUDWATCH_SERVICE_SHAPE else None
    if handler is None:
        message = f"ecsop_moto serves no RPC v2 operation {call['rpcService']}.{call['operation']}"
        return cbor_error(404, "UnknownOperationException", message, "UnknownOperation;Sender")
    from moto.core.exceptions import ServiceException

    try:
        request = cbor2.loads(body) if body else {}
        return cbor_response(200, handler(cloudwatch_backend(call["account"], call["region"]), request))
    except CloudWatchError as exc:
        return cbor_error(exc.status, exc.code, exc.message, f"{exc.code};Sender")
    except ServiceException as exc:
        # moto's CloudWatch errors carry the Query code (`ResourceNotFound`, `InvalidParameterValue`).
        status = 404 if exc.code.startswith("ResourceNotFound") else 400
        return cbor_error(status, exc.code, exc.message, f"{exc.code};Sender")
    except KeyError as exc:
        return cbor_error(400, "MissingParameter", f"missing required parameter {exc}", "MissingParameter;Sender")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-file", help="write {port, pid} here (atomically) once listening")
    parser.add_argument("--idle-exit", type=float, default=0, help="exit after this many idle seconds (0: never)")
    args = parser.parse_args()

    patch_ecs()
    patch_ecr()
    patch_servicediscovery()
    patch_apigatewayv2()
    patch_propagation()
    harness = Harness(DomainDispatcherApplication(create_backend_app), args.idle_exit)
    server = make_server(args.host, args.port, harness, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    if args.state_file:
        tmp = f"{args.state_file}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump({"port": port, "pid": os.getpid()}, fh)
        os.replace(tmp, args.state_file)
    print(f"ECSOP_MOTO_READY port={port}", flush=True)
    threading.Thread(target=harness.watchdog, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
