"""`bik-sync check`: are the BIK credentials good? One call to BIK's authPartnerViaKey.

Exit codes: 0 the credentials work, 1 BIK refused them, 2 BIK cannot be reached (or no token).
"""

from __future__ import annotations

import sys

from bik_sync.bik.auth_check import check_credentials
from bik_sync.commands.common import (
    EXIT_CANNOT_START,
    EXIT_INCOMPLETE,
    EXIT_OK,
    CannotStart,
    Parser,
    add_bik_arguments,
    allow_http,
    http_notice,
    token_provider,
)
from bik_sync.observability import quiet_for_terminal

PROG = "bik-sync check"


def main(argv: list[str]) -> int:
    parser = Parser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    add_bik_arguments(parser)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for BIK (default 10)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_CANNOT_START
    quiet_for_terminal()
    try:
        plain_http = allow_http(args.api_url)
        token = token_provider(args)(False)
    except CannotStart as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    if plain_http:
        print(http_notice(args.api_url), file=sys.stderr)
    result = check_credentials(
        args.api_url, token, app_id=args.app_id, allow_http=plain_http, timeout_s=args.timeout
    )
    if result.verdict == "ok":
        print(f"credentials OK: BIK accepted them ({result.url})")
        return EXIT_OK
    if result.verdict == "refused":
        print(f"credentials refused: {result.detail}; check the API key and secret (and --app-id)")
        return EXIT_INCOMPLETE
    print(f"BIK cannot be reached at {result.url}: {result.detail}")
    return EXIT_CANNOT_START
