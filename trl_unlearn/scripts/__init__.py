"""Command-line scripts behind ``trl-unlearn`` (each also runs as ``python -m``)."""
