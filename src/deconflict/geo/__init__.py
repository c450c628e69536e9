"""Geometry on the Earth: GeoJSON parsing, shapes, caps, distances and bounding boxes."""
