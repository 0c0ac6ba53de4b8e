"""OpenRosa (ODK Collect, Enketo) as field clients: the soil-sample XForm and submissions (DESIGN §4.3)."""
