"""``python -m deconflict`` is the ``deconflict`` command."""

from deconflict.cli import main

# Guarded: ``serve --workers`` starts its processes with multiprocessing's "spawn", which
# imports the parent's main module again in each of them.
if __name__ == "__main__":
    main()
