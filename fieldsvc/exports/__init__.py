"""Exports of samples, results, grades and certificates as XLSX, CSV, GeoJSON and GeoPackage (DESIGN §4.9)."""
