"""``python -m yomo`` runs the ``yomo`` command."""

from yomo.cli import main

main()
