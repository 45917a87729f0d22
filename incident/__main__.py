"""Allow ``python -m incident``."""

from incident.cli import main

main()
