"""runvoy's command line: a thin layer over runvoy_core's Python API."""
