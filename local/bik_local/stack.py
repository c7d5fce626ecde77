"""The local AWS stack: moto's server, the BIK emulator and the pollers, on loopback.

``bik-sync stack`` (or ``python -m bik_local.stack``) runs it the way AWS would: the bucket
notifies a queue, and each function's poller, in a process of its own, invokes the real handler
with real event shapes; the handlers' logs go to this process's stdout (CloudWatch, locally).
:func:`launch` starts it as a subprocess and hands back boto3 clients for the user's side (the demo
and integration tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets as secrets_module
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3

from bik_local.emulator import DEFAULT_TOKEN, start_emulator
from bik_local.resources import REGION, RESOURCES, LocalResources

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
LOCAL_VISIBILITY_TIMEOUT_S = 3  # short, so that retries happen within a test's patience


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def aws_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )


def create_resources(endpoint_url: str, token: str, res: LocalResources = RESOURCES) -> dict[str, str]:
    """Create what template.yaml declares (and the local notification queue); returns their URLs/ids."""
    s3, sqs = aws_client("s3", endpoint_url), aws_client("sqs", endpoint_url)
    ddb, secrets = aws_client("dynamodb", endpoint_url), aws_client("secretsmanager", endpoint_url)

    def queue(name: str, attributes: dict[str, str]) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    dlq_url, dlq_arn = queue(res.dead_letter_queue, {})
    work_url, _ = queue(
        res.work_queue,
        {
            "VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": res.max_receive_count}
            ),
        },
    )
    _, events_dlq_arn = queue(res.s3_events_dead_letter_queue, {})
    events_url, events_arn = queue(
        res.s3_events_queue,
        {
            "VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": events_dlq_arn, "maxReceiveCount": 3}),
        },
    )
    _, continue_dlq_arn = queue(res.ingest_continue_dead_letter_queue, {})
    continue_url, _ = queue(
        res.ingest_continue_queue,
        {
            "VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": continue_dlq_arn, "maxReceiveCount": 5}),
        },
    )
    s3.create_bucket(Bucket=res.bucket)
    s3.put_bucket_versioning(Bucket=res.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=res.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": events_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                }
            ]
        },
    )
    ddb.create_table(
        TableName=res.jobs_table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    secret_arn = secrets.create_secret(Name=res.secret, SecretString=token)["ARN"]
    # As the template's GenerateSecretString does: a fresh random key for each stack.
    signing_arn = secrets.create_secret(Name=res.signing_secret, SecretString=secrets_module.token_hex(32))[
        "ARN"
    ]
    return {
        "bucket": res.bucket,
        "work_queue_url": work_url,
        "dead_letter_queue_url": dlq_url,
        "s3_events_queue_url": events_url,
        "ingest_continue_queue_url": continue_url,
        "jobs_table": res.jobs_table,
        "secret_arn": secret_arn,
        "signing_secret_arn": signing_arn,
    }


def lambda_environment(endpoint_url: str, urls: Mapping[str, str], bik_url: str) -> dict[str, str]:
    """What the template gives the functions, pointed at the local stack. Values already in the
    environment win, so a test can set e.g. BIK_READ_TIMEOUT_S for the stack it launches."""
    env = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "DATA_BUCKET_NAME": urls["bucket"],
        "WORK_QUEUE_URL": urls["work_queue_url"],
        "INGEST_CONTINUE_QUEUE_URL": urls["ingest_continue_queue_url"],
        "JOBS_TABLE_NAME": urls["jobs_table"],
        "BIK_SECRET_ID": urls["secret_arn"],
        "JOB_SIGNING_SECRET_ID": urls["signing_secret_arn"],
        "BIK_API_URL": bik_url,
        "BIK_ALLOW_HTTP": "true",
        "BIK_MAX_RECEIVE_COUNT": str(RESOURCES.max_receive_count),
        "POWERTOOLS_SERVICE_NAME": "bik-sync",
        "POWERTOOLS_METRICS_NAMESPACE": "BikSync",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    return {
        **env,
        **{k: v for k, v in os.environ.items() if k in env and k.startswith(("BIK_", "POWERTOOLS_"))},
    }


class SerialisedMotoServer:
    """moto's server, answering one request at a time.

    AWS's services are atomic per request; moto's in-memory backends are not thread-safe (two
    concurrent DynamoDB updates can lose an ADD, and werkzeug logs "dictionary changed size during
    iteration"). Serialising requests restores the guarantee the code relies on. The pollers use
    short polls, so no request holds the lock for long.
    """

    def __init__(self, port: int) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def one_at_a_time(environ: dict[str, Any], start_response: Any) -> Any:
            with lock:
                return list(app(environ, start_response))

        self._server = make_server("127.0.0.1", port, one_at_a_time, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()


def banner(endpoint: str, bik_url: str, urls: Mapping[str, str]) -> str:
    """Where everything is, and the exact lines that point the AWS CLI, boto3 and bik-sync at it.

    Not the token, even the emulator's: this goes to the stack's log, and no token goes in a log
    (``bik-sync emulator --help`` shows the default one).
    """
    return "\n".join(
        [
            "Local stack ready.",
            f"  AWS endpoint   {endpoint}   (S3, SQS, DynamoDB, Secrets Manager: moto's server)",
            f"  BIK emulator   {bik_url}",
            f"  bucket         {urls['bucket']}   (drop files under incoming/)",
            f"  work queue     {urls['work_queue_url']}",
            f"  dead letters   {urls['dead_letter_queue_url']}",
            f"  S3 events      {urls['s3_events_queue_url']}",
            f"  jobs table     {urls['jobs_table']}",
            "Point the AWS CLI, boto3 and bik-sync at it (paste into another shell):",
            f"  export AWS_ENDPOINT_URL={endpoint}",
            "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing",
            f"  export AWS_DEFAULT_REGION={REGION}",
            f"  export JOBS_TABLE_NAME={urls['jobs_table']} BIK_API_URL={bik_url}",
            "  export BIK_AUTH_TOKEN=...   # the token the stack was given (--token); never printed",
            f"The AWS CLI v1 needs --endpoint-url for SQS: aws --endpoint-url {endpoint} sqs ..."
            " (boto3 and the AWS CLI v2 read AWS_ENDPOINT_URL).",
            "",
        ]
    )


def serve(
    moto_port: int,
    bik_port: int,
    token: str,
    ready_file: Path | None,
    stop: threading.Event,
    emulator_seed: int | None = None,
) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request lines before the banner
    moto = SerialisedMotoServer(moto_port)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    emulator = start_emulator(port=bik_port, token=token, seed=emulator_seed)
    try:
        urls = create_resources(endpoint, token)
        print(banner(endpoint, emulator.url, urls), flush=True)  # the first lines, before any log
        logging.basicConfig(
            level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
        os.environ.update(lambda_environment(endpoint, urls, emulator.url))
        # Each function polls in a process of its own, like Lambda's separate execution environments.
        functions = [
            subprocess.Popen(
                [sys.executable, "-m", "bik_local.poller", name, urls[queue]], stdin=subprocess.DEVNULL
            )
            for name, queue in (
                ("IngestFunction", "s3_events_queue_url"),
                # The same function again, on its continuation queue (an SQS event source on AWS).
                ("IngestContinuations", "ingest_continue_queue_url"),
                ("UpsertFunction", "work_queue_url"),
            )
        ]
        info = {"endpoint_url": endpoint, "bik_url": emulator.url, "bik_base_url": emulator.base_url, **urls}
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(info))
            tmp.replace(ready_file)
        logging.getLogger("bik_local.stack").info("local stack ready: %s", json.dumps(info))
        while not stop.wait(0.5):
            if any(function.poll() is not None for function in functions):
                logging.getLogger("bik_local.stack").error("a function poller exited; stopping the stack")
                break
        for function in functions:
            function.terminate()
        for function in functions:
            try:
                function.wait(timeout=10)
            except subprocess.TimeoutExpired:
                function.kill()
    finally:
        emulator.stop()
        moto.stop()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bik-sync stack", description="Run the local AWS stack until interrupted."
    )
    parser.add_argument("--moto-port", type=int, default=0, help="moto server port (default: a free one)")
    parser.add_argument("--bik-port", type=int, default=0, help="BIK emulator port (default: a free one)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the BIK token stored in the secret")
    parser.add_argument("--ready-file", type=Path, help="write the endpoints here (JSON) once ready")
    parser.add_argument(
        "--emulator-seed", type=int, help="seed the emulator's fault draws (re-applied on each reset)"
    )
    args = parser.parse_args(list(argv))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    serve(
        args.moto_port or free_port(),
        args.bik_port or free_port(),
        args.token,
        args.ready_file,
        stop,
        args.emulator_seed,
    )
    return 0


@dataclass
class RunningStack:
    """A stack launched as a subprocess, seen from the user's side."""

    process: subprocess.Popen[bytes]
    info: dict[str, str]
    log_path: Path

    def client(self, service: str) -> Any:
        return aws_client(service, self.info["endpoint_url"])

    def wait_for_object(self, key: str, timeout_s: float, bucket: str = "") -> bytes | None:
        s3 = self.client("s3")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return None
            try:
                body: bytes = s3.get_object(Bucket=bucket or self.info["bucket"], Key=key)["Body"].read()
                return body
            except s3.exceptions.NoSuchKey:
                time.sleep(0.2)
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class StackDidNotStart(RuntimeError):
    pass


def launch(
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
    emulator_seed: int | None = None,
) -> RunningStack:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ready = log_path.with_suffix(".ready.json")
    ready.unlink(missing_ok=True)
    log: IO[bytes] = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bik_local.stack", "--ready-file", str(ready)]
        + ([] if emulator_seed is None else ["--emulator-seed", str(emulator_seed)]),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready.exists():
            return RunningStack(process, json.loads(ready.read_text()), log_path)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    RunningStack(process, {}, log_path).stop()
    tail = log_path.read_text(errors="replace").splitlines()[-5:]
    raise StackDidNotStart("the local stack did not start: " + " | ".join(tail))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
