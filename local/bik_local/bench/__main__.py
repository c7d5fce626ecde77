"""Run the benchmarks: ``python -m bik_local.bench [NAME ...]``, one JSON object per line.

Every module of this package that defines ``run() -> dict`` is a benchmark named after the
module; its line is ``{"bench": NAME, ...figures}``. With names, only those run.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import traceback

import bik_local.bench as package


def discover() -> list[str]:
    return sorted(
        info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    available = discover()
    wanted = argv or available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr
        )
        return 2
    failed = 0
    for name in wanted:
        module = importlib.import_module(f"{package.__name__}.{name}")
        run = getattr(module, "run", None)
        if not callable(run):
            continue
        try:
            figures = run()
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
            failed += 1
            traceback.print_exc(file=sys.stderr)
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps({"bench": name, **figures}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
