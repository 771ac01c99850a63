"""``python -m infrastructure.cli``."""

from infrastructure.cli import main

raise SystemExit(main())
