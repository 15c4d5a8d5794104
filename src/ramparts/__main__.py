"""``python -m ramparts`` is the ``ramparts`` command."""

from ramparts.cli import main

main()
