"""`bik-sync` command line: one entry point, a subcommand per module.

Each subcommand's module owns its own argparse and exposes ``main(argv) -> int``; importing
lazily keeps `bik-sync validate` free of AWS and of the local-only tools.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "validate": ("bik_sync.validate_cmd", "read and validate a customers file offline"),
    "push": ("bik_sync.commands.push", "send a file to BIK from here: progress, resumable, same outputs"),
    "check": ("bik_sync.commands.check", "are the BIK credentials good? (authPartnerViaKey)"),
    "status": ("bik_sync.commands.status", "how far a job of a deployed (or local) stack is"),
    "emulator": ("bik_local.emulator", "run the BIK API emulator on loopback"),
    "stack": ("bik_local.stack", "run the local AWS stack (moto server + poller + emulator)"),
    "demo": ("bik_local.demo", "drop a file on the local stack and print what happened"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        print("usage: bik-sync {" + ",".join(COMMANDS) + "} [options]\n")
        for name, (_, summary) in COMMANDS.items():
            print(f"  {name:<10} {summary}")
        return 0 if args and args[0] in {"-h", "--help"} else 2
    module_name, _ = COMMANDS[args[0]]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        print(
            f"bik-sync {args[0]}: not available in this install ({exc.name} is missing;"
            " pip install 'bik-sync[cli]')",
            file=sys.stderr,
        )
        return 2
    code: int = module.main(args[1:])
    return code


if __name__ == "__main__":
    raise SystemExit(main())
