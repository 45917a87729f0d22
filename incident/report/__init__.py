"""Renderers: one per output format, each taking plain dataclasses, returning text."""
