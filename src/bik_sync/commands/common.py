"""What the laptop commands share: argument parsing that never prints a traceback, the token
sources, the URL policy, and the exit codes.

The token comes from ``--token-file``, ``--secret-id`` (Secrets Manager through boto3) or the
``BIK_AUTH_TOKEN`` environment variable, read here, in the commands' argument handling, and parsed
by the Lambda's own :func:`bik_sync.secrets.parse_token` (plain token, ``{"token"}``, or
``{"apiKey","apiSecret"}``). It is never printed and never written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit

from bik_sync.bik import check_api_url
from bik_sync.bik.client import TokenProvider
from bik_sync.secrets import SecretError, make_token_provider, parse_token
from bik_sync.settings import DEFAULT_BIK_API_URL

EXIT_OK: Final = 0
EXIT_INCOMPLETE: Final = 1  # some rows rejected or failed; for check: credentials refused
EXIT_CANNOT_START: Final = 2
EXIT_INTERRUPTED: Final = 130
TOKEN_ENV: Final = "BIK_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a token
APP_ID_ENV: Final = "BIK_APP_ID"


class CannotStart(Exception):
    """The command cannot run; the message is the one line the user sees."""


class Parser(argparse.ArgumentParser):
    """Usage errors exit 2 with one line, like every other reason not to start."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CANNOT_START)


def add_bik_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """--api-url, --app-id, --token-file, --secret-id."""
    env = os.environ if environ is None else environ
    parser.add_argument(
        "--api-url",
        default=DEFAULT_BIK_API_URL,
        metavar="URL",
        help="BIK's createOrUpdateUserProperties URL: https, or http://127.0.0.1:PORT for the emulator",
    )
    parser.add_argument(
        "--app-id",
        default=env.get(APP_ID_ENV, ""),
        metavar="ID",
        help=f"the store's BIK application id, sent as appId (default: ${APP_ID_ENV}, else none)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--token-file", type=Path, metavar="PATH", help="a file holding the BIK token")
    source.add_argument(
        "--secret-id", metavar="ID", help="a Secrets Manager secret holding the token (read with boto3)"
    )
    parser.set_defaults(env_token=env.get(TOKEN_ENV, ""))


def allow_http(url: str) -> bool:
    """https always; plain http only for a loopback host (the emulator). Raises CannotStart otherwise."""
    try:
        check_api_url(url, allow_http=False)
        return False
    except ValueError:
        pass
    try:
        check_api_url(url, allow_http=True)
    except ValueError:
        host = urlsplit(url).hostname
        raise CannotStart(
            f"--api-url must use https (plain http only for a loopback address), got {url.split('?')[0]!r}"
            if host
            else f"--api-url is not a URL: {url!r}"
        ) from None
    return True


def http_notice(url: str) -> str:
    host = urlsplit(url).netloc
    return f"note: plain http to {host} (a loopback address: the local emulator, not BIK)"


def token_provider(args: argparse.Namespace) -> TokenProvider:
    """The token from the first source given; raises CannotStart with a one-line reason.

    The provider is called once here, so a missing or unreadable token stops the command at once.
    """
    provider = _provider(args)
    try:
        provider(False)
    except SecretError as exc:
        raise CannotStart(str(exc)) from None
    return provider


def _provider(args: argparse.Namespace) -> TokenProvider:
    if args.token_file is not None:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CannotStart(
                f"cannot read the token file {args.token_file}: {exc.strerror or exc}"
            ) from None
        return _fixed(text, f"the token file {args.token_file}")
    if args.secret_id:
        return _secret(args.secret_id)
    if args.env_token.strip():
        return _fixed(args.env_token, TOKEN_ENV)
    raise CannotStart(f"no BIK token: set {TOKEN_ENV}, or give --token-file or --secret-id")


def _fixed(text: str, origin: str) -> TokenProvider:
    try:
        token = parse_token(text)
    except SecretError as exc:
        raise CannotStart(f"{origin}: {exc}") from None

    def provide(force_refresh: bool = False) -> str:
        return token

    return provide


def _secret(secret_id: str) -> TokenProvider:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        client: Any = boto3.client("secretsmanager")
    except BotoCoreError as exc:  # no region, no credentials configuration
        raise CannotStart(f"cannot read secret {secret_id}: {exc}") from None
    return make_token_provider(secret_id, max_age_s=300, client=client)
