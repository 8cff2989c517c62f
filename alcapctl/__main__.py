"""Entry point for ``python -m alcapctl``."""

from alcapctl.cli import main

main()
