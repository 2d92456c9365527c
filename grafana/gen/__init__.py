"""Dashboard builders for grafana/generate.py: shared pieces in common.py and panels.py,
one module per dashboard."""
