"""Soil samples: what a sampler's phone sends, checked and normalised."""
