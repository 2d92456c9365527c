"""storagenode-exporter: Storj storagenode logs and node API as Prometheus metrics."""

__version__ = "0.1.0"
