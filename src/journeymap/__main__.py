"""Run the command line with ``python -m journeymap``."""

from journeymap.cli import main

main()
