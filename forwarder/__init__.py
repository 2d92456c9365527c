"""storagenode-log-forwarder: streams a remote node's log to storagenode-exporter.

Runs beside the node (a Raspberry Pi is enough): tails the log with the exporter's own file
tailer (logstream/file.py) and serves it over one small authenticated TCP protocol (see
logstream/protocol.py and docs/forwarder.md), resuming exactly where the exporter's saved
position ends.
"""

__version__ = "0.1.0"
