"""incident: find, roll and purge leaked Stripe keys, and write the incident record."""

__version__ = "0.1.0"
