"""``python -m flows.cli``: the ``flows`` command."""

from flows.cli.main import main

raise SystemExit(main())
