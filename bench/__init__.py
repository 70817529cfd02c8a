"""Benchmarks and large-N scenarios of tapestry_media: ``make bench`` (``scripts/bench.sh``)."""
