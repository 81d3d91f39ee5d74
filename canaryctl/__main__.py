"""Allow `python -m canaryctl`."""

from canaryctl.cli import main

raise SystemExit(main())
