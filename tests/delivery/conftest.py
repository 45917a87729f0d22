"""Delivery tests: AWS calls go to a moto server on loopback."""

from tests.sandbox.fixtures import moto_server

__all__ = ["moto_server"]
