"""Simulated storagenode parts for tests and `storagenode-exporter demo` (no real node needed).

`exporter.simulate.nodeapi` serves the dashboard API of several node versions over real HTTP.
"""
