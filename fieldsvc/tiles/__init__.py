"""Map tiles (DESIGN §4.8): Mapbox Vector Tiles of parcels, samples, area outlines and planned points."""
