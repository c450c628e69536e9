"""``python -m deconflict`` is the ``deconflict`` command."""

from deconflict.cli import main

main()
