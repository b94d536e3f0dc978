"""Spatial reference ids used at every edge of the system."""

WGS84 = 4326
