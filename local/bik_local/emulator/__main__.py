import sys

from bik_local.emulator.cli import main

raise SystemExit(main(sys.argv[1:]))
