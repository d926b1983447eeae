"""``python -m destination_segment.receiver``: run the receiver (see ``cli.main``)."""

from destination_segment.receiver.cli import main

raise SystemExit(main())
