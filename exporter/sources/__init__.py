"""The exporter's own log sources (a forwarder, stdin, docker-name:, OTLP); the file and Docker
json-file sources and the Source contract live in logstream/, shared with the forwarder."""
