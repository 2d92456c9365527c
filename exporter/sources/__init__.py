"""Log sources: where lines come from (a file, a Docker json-file log, a forwarder, stdin)."""
