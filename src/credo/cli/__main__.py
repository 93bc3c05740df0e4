"""``python -m credo.cli``: the same command line as the ``credo`` script."""

from credo.cli import main

main()
