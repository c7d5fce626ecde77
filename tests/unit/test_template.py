"""template.yaml agrees with the code and the local stack: names, environment, events, limits, IAM.

Offline: the template is read with PyYAML (CloudFormation's short tags turned into their long
form), the code is imported or read, nothing talks to AWS.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the dev pins

from bik_local.resources import RESOURCES, LocalResources
from bik_sync.layout import FAILED_PREFIX, INCOMING_PREFIX, REJECTS_PREFIX, REPORTS_PREFIX, STATE_PREFIX
from bik_sync.settings import ENVIRONMENT, Settings, env_table

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SRC = ROOT / "src"

FUNCTIONS = ("IngestFunction", "UpsertFunction")
# Settings each function cannot run without, whatever else the code asks for (see also the required
# fields of each function's settings class below).
REQUIRED_ENV = {
    "IngestFunction": {"WORK_QUEUE_URL", "JOBS_TABLE_NAME"},
    "UpsertFunction": {"BIK_SECRET_ID", "JOBS_TABLE_NAME", "BIK_MAX_RECEIVE_COUNT"},
}
# Each local-stack resource and the template resource it stands for (None: local only).
LOCAL_TO_LOGICAL: dict[str, tuple[str, str] | None] = {
    "bucket": ("DataBucket", "AWS::S3::Bucket"),
    "work_queue": ("WorkQueue", "AWS::SQS::Queue"),
    "dead_letter_queue": ("WorkDeadLetterQueue", "AWS::SQS::Queue"),
    "jobs_table": ("JobsTable", "AWS::DynamoDB::Table"),
    "secret": ("BikSecret", "AWS::SecretsManager::Secret"),
    "signing_secret": ("JobSigningSecret", "AWS::SecretsManager::Secret"),
    # On AWS the bucket invokes IngestFunction directly; locally its notifications go to a queue.
    "s3_events_queue": None,
    # Where S3 events that ingest keeps failing on end up: the function's async DLQ on AWS.
    "s3_events_dead_letter_queue": ("IngestDeadLetterQueue", "AWS::SQS::Queue"),
    "ingest_continue_queue": ("IngestContinueQueue", "AWS::SQS::Queue"),
    "ingest_continue_dead_letter_queue": ("IngestContinueDeadLetterQueue", "AWS::SQS::Queue"),
    "max_receive_count": None,  # a number, checked against the RedrivePolicy below
}
METRICS = {
    "RowsRead", "RecordsCreated", "RecordsUpdated", "RecordsRejected", "RecordsFailed",
    "ApiLatency", "Retries", "AuthFailures",
}  # fmt: skip


# --- reading the template ------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that reads !Ref, !GetAtt, !Sub... as the long-form intrinsic functions."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return document


def _resources(template: Mapping[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = template["Resources"]
    return resources


def _resolve(template: Mapping[str, Any], value: Any) -> Any:
    """The few intrinsics whose value the template fixes by itself (FindInMap); others unchanged."""
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        mapping, top, second = value["Fn::FindInMap"]
        return template["Mappings"][mapping][top][second]
    return value


def _function_properties(template: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A function's properties with Globals.Function merged in, as SAM merges them."""
    globals_ = dict(template.get("Globals", {}).get("Function", {}))
    own = dict(_resources(template)[name]["Properties"])
    merged = {**globals_, **own}
    merged["Environment"] = {
        "Variables": {
            **globals_.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
    }
    return merged


def _environment(template: Mapping[str, Any], name: str) -> dict[str, Any]:
    variables: dict[str, Any] = _function_properties(template, name)["Environment"]["Variables"]
    return variables


def _statements(template: Mapping[str, Any], role: str) -> Iterator[dict[str, Any]]:
    for policy in _resources(template)[role]["Properties"]["Policies"]:
        yield from policy["PolicyDocument"]["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _s3_object_prefixes(resource: Any) -> str | None:
    """'incoming/' for an ARN built as arn:...:s3:::${Bucket}/incoming/*; None when not an S3 object ARN."""
    if not (isinstance(resource, dict) and "Fn::Sub" in resource):
        return None
    pattern = resource["Fn::Sub"]
    text = pattern[0] if isinstance(pattern, list) else pattern
    match = re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{[A-Za-z]+\}/(.*)\*", text)
    return match.group(1) if match else None


# --- reading the code ----------------------------------------------------------------------------


def _settings_class_of(handler_module: str) -> type[Settings]:
    """The settings class a function runs with: the type of the settings in its handler's deps."""
    module = importlib.import_module(handler_module)
    deps_type = typing.get_type_hints(module.default_deps)["return"]
    kind: type[Settings] = typing.get_type_hints(deps_type)["settings"]
    assert issubclass(kind, Settings), kind
    return kind


def _required_env(handler_module: str) -> set[str]:
    """The variables of the function's settings table that have no default."""
    return {var.name for var in env_table(_settings_class_of(handler_module)).values() if var.required}


# --- the tests -----------------------------------------------------------------------------------


def test_every_logical_name_the_code_and_docs_use_is_a_template_resource(
    template: dict[str, Any],
) -> None:
    expected = {
        "DataBucket": "AWS::S3::Bucket",
        "WorkQueue": "AWS::SQS::Queue",
        "WorkDeadLetterQueue": "AWS::SQS::Queue",
        "JobsTable": "AWS::DynamoDB::Table",
        "BikSecret": "AWS::SecretsManager::Secret",
        "IngestFunction": "AWS::Serverless::Function",
        "UpsertFunction": "AWS::Serverless::Function",
        "Dashboard": "AWS::CloudWatch::Dashboard",
    }

    types = {name: resource["Type"] for name, resource in _resources(template).items()}

    assert {name: types.get(name) for name in expected} == expected
    assert sum(1 for kind in types.values() if kind == "AWS::CloudWatch::Alarm") >= 3


def test_both_functions_run_python313_on_arm64_from_src(
    template: dict[str, Any],
) -> None:
    for name in FUNCTIONS:
        properties = _function_properties(template, name)

        assert properties["Runtime"] == "python3.13", name
        assert properties["Architectures"] == ["arm64"], name
        assert properties["CodeUri"] == "src/", name
        assert properties["Tracing"] == "Active", name


def test_each_functions_handler_path_names_a_callable(
    template: dict[str, Any],
) -> None:
    # Imported here, lazily: a handler that cannot be imported fails this test, not the whole file.
    for name, expected in (
        ("IngestFunction", "bik_sync.handlers.ingest.handler"),
        ("UpsertFunction", "bik_sync.handlers.upsert.handler"),
    ):
        handler = _resources(template)[name]["Properties"]["Handler"]
        module_name, _, attribute = handler.rpartition(".")

        module = importlib.import_module(module_name)

        assert handler == expected
        assert callable(getattr(module, attribute)), handler


def test_settings_read_every_variable_the_template_gives_a_function(
    template: dict[str, Any],
) -> None:
    read = set(ENVIRONMENT)

    for name in FUNCTIONS:
        unread = {
            var
            for var in _environment(template, name)
            if var not in read and not var.startswith("POWERTOOLS_")
        }

        assert not unread, f"{name} sets variables Settings.from_env never reads: {sorted(unread)}"


def test_powertools_service_namespace_and_tracer_in_the_environment_match_the_code(
    template: dict[str, Any],
) -> None:
    for name in FUNCTIONS:
        env = _environment(template, name)

        assert env["POWERTOOLS_SERVICE_NAME"] == "bik-sync"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "BikSync"
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        assert "POWERTOOLS_LOG_LEVEL" in env


def test_the_template_sets_every_variable_a_functions_settings_require(
    template: dict[str, Any],
) -> None:
    for name in FUNCTIONS:
        handler_module = _resources(template)[name]["Properties"]["Handler"].rpartition(".")[0]
        required = _required_env(handler_module) | REQUIRED_ENV[name]

        missing = required - set(_environment(template, name))

        assert not missing, f"{name} needs {sorted(missing)} set"


def test_the_bucket_notification_invokes_ingest_for_every_object_created_on_incoming_only(
    template: dict[str, Any],
) -> None:
    notification = _resources(template)["DataBucket"]["Properties"]["NotificationConfiguration"]

    (config,) = notification["LambdaConfigurations"]
    rules = config["Filter"]["S3Key"]["Rules"]

    assert set(notification) == {"LambdaConfigurations"}
    assert config["Event"] == "s3:ObjectCreated:*"
    assert rules == [{"Name": "prefix", "Value": INCOMING_PREFIX}]
    assert INCOMING_PREFIX == "incoming/"
    assert config["Function"] == {"Fn::GetAtt": ["IngestFunction", "Arn"]}


def test_no_output_prefix_can_retrigger_ingest() -> None:
    for prefix in (REJECTS_PREFIX, REPORTS_PREFIX, FAILED_PREFIX, STATE_PREFIX):
        assert not prefix.startswith(INCOMING_PREFIX), prefix


def test_only_s3_of_this_account_may_invoke_ingest(
    template: dict[str, Any],
) -> None:
    permission = _resources(template)["IngestS3InvokePermission"]["Properties"]

    assert permission["Principal"] == "s3.amazonaws.com"
    assert permission["FunctionName"] == {"Fn::GetAtt": ["IngestFunction", "Arn"]}
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert "SourceArn" in permission
    assert "IngestS3InvokePermission" in _as_list(_resources(template)["DataBucket"]["DependsOn"])


def test_max_receive_count_agrees_in_the_redrive_policy_the_worker_and_the_local_stack(
    template: dict[str, Any],
) -> None:
    redrive = _resources(template)["WorkQueue"]["Properties"]["RedrivePolicy"]

    in_queue = int(_resolve(template, redrive["maxReceiveCount"]))
    in_worker = int(_resolve(template, _environment(template, "UpsertFunction")["BIK_MAX_RECEIVE_COUNT"]))

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]}
    assert in_queue == in_worker == RESOURCES.max_receive_count


def test_work_queue_visibility_is_at_least_six_times_the_worker_timeout(
    template: dict[str, Any],
) -> None:
    queue = _resources(template)["WorkQueue"]["Properties"]
    worker = _function_properties(template, "UpsertFunction")
    event = worker["Events"]["Work"]["Properties"]

    window = int(event.get("MaximumBatchingWindowInSeconds", 0))

    assert int(queue["VisibilityTimeout"]) >= 6 * int(worker["Timeout"]) + window
    assert int(_function_properties(template, "IngestFunction")["Timeout"]) == 900


def test_the_worker_event_source_reports_partial_failures_and_caps_concurrency(
    template: dict[str, Any],
) -> None:
    events = _resources(template)["UpsertFunction"]["Properties"]["Events"]

    (event,) = events.values()
    properties = event["Properties"]

    assert event["Type"] == "SQS"
    assert properties["Queue"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaxConcurrency"}
    assert 1 <= int(properties["BatchSize"]) <= 10


def test_each_local_stack_resource_stands_for_a_template_resource(
    template: dict[str, Any],
) -> None:
    resources = _resources(template)

    fields = {field.name for field in dataclasses.fields(LocalResources)}
    unmapped = fields - set(LOCAL_TO_LOGICAL)

    assert not unmapped, (
        f"new local resources: say which template resource each stands for: {sorted(unmapped)}"
    )
    for field, logical in LOCAL_TO_LOGICAL.items():
        if logical is None or field not in fields:
            continue
        name, kind = logical
        assert resources.get(name, {}).get("Type") == kind, f"{field} -> {name}"


def test_ingest_is_invoked_one_continuation_at_a_time_from_its_own_queue(template: dict[str, Any]) -> None:
    # Given the template's IngestFunction
    ingest = _resources(template)["IngestFunction"]["Properties"]
    # Then its continuation queue invokes it one message at a time, and its settings name that queue
    (source,) = ingest["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["IngestContinueQueue", "Arn"]}
    assert source["Properties"]["BatchSize"] == 1
    assert ingest["Environment"]["Variables"]["INGEST_CONTINUE_QUEUE_URL"] == {"Ref": "IngestContinueQueue"}


def test_each_function_role_touches_only_its_own_s3_prefixes(
    template: dict[str, Any],
) -> None:
    expected = {
        "IngestFunctionRole": {
            "read": {INCOMING_PREFIX, "mappings/", STATE_PREFIX},
            "write": {REJECTS_PREFIX, REPORTS_PREFIX, STATE_PREFIX},
        },
        "UpsertFunctionRole": {"read": set(), "write": {REJECTS_PREFIX, REPORTS_PREFIX, FAILED_PREFIX}},
    }

    for role, grants in expected.items():
        read: set[str] = set()
        write: set[str] = set()
        for statement in _statements(template, role):
            actions = set(_as_list(statement["Action"]))
            prefixes = {_s3_object_prefixes(resource) for resource in _as_list(statement["Resource"])} - {
                None
            }
            if actions & {"s3:GetObject", "s3:GetObjectVersion"}:
                read |= {p for p in prefixes if p is not None}
            if "s3:PutObject" in actions:
                write |= {p for p in prefixes if p is not None}
                assert len(prefixes) == len(_as_list(statement["Resource"])), (
                    f"{role}: PutObject beyond prefixes"
                )

        assert (read, write) == (grants["read"], grants["write"]), role


def test_role_resources_use_a_wildcard_only_for_x_ray(
    template: dict[str, Any],
) -> None:
    for role in ("IngestFunctionRole", "UpsertFunctionRole"):
        for statement in _statements(template, role):
            actions = _as_list(statement["Action"])
            assert all("*" not in action for action in actions), f"{role}: {actions}"
            if "*" in _as_list(statement["Resource"]):
                assert all(action.startswith("xray:") for action in actions), f"{role}: {actions} on *"


def test_the_bucket_is_encrypted_private_versioned_tls_only_and_expires_outputs(
    template: dict[str, Any],
) -> None:
    bucket = _resources(template)["DataBucket"]["Properties"]
    policy = _resources(template)["DataBucketPolicy"]["Properties"]["PolicyDocument"]

    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]
    expiring = {
        rule["Prefix"] for rule in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in rule
    }
    tls_denials = [
        statement
        for statement in policy["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]

    assert encryption["SSEAlgorithm"] in {"aws:kms", "AES256"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert {REJECTS_PREFIX, REPORTS_PREFIX, FAILED_PREFIX, STATE_PREFIX} <= expiring
    assert tls_denials


def test_each_queue_is_encrypted_at_rest(
    template: dict[str, Any],
) -> None:
    queues = {
        name: r["Properties"] for name, r in _resources(template).items() if r["Type"] == "AWS::SQS::Queue"
    }

    assert queues
    for name, properties in queues.items():
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties, name


def test_the_jobs_table_has_the_key_ttl_and_protection_the_job_store_uses(
    template: dict[str, Any],
) -> None:
    table = _resources(template)["JobsTable"]["Properties"]

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_the_dashboard_and_alarms_watch_the_metrics_the_code_emits(
    template: dict[str, Any],
) -> None:
    resources = _resources(template)
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    alarmed = {
        r["Properties"].get("MetricName")
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "BikSync"
    }
    dlq_alarms = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Dimensions", [{}])[0].get("Value")
        == {"Fn::GetAtt": ["WorkDeadLetterQueue", "QueueName"]}
    ]
    source = "\n".join(path.read_text() for path in (SRC / "bik_sync").rglob("*.py"))

    assert all(f'"{metric}"' in body for metric in METRICS)
    assert {"RecordsFailed", "AuthFailures"} <= alarmed
    assert dlq_alarms
    assert all(f'"{metric}"' in source for metric in METRICS | alarmed), (
        "a watched metric the code never emits"
    )


def test_each_checkov_skip_carries_its_justification(
    template: dict[str, Any],
) -> None:
    skips = [
        (name, skip)
        for name, resource in _resources(template).items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]

    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "").split()) >= 8, f"{name} {skip['id']}: say why"
