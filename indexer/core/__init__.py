"""Shared foundations: errors, value types, settings, limits, locations and the protocols between stages."""
