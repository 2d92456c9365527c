"""What the exporter and the forwarder share, below both: reading a node's log and the wire
protocol between them.

The exporter tails local logs with it and the forwarder tails the logs it serves with the
same code, so rotation, copytruncate and resuming behave the same in both. Nothing here
imports `exporter` or `forwarder` (tests/test_layering.py holds that), so the forwarder
installs without the exporter's dependencies.
"""
