"""The `oss` command line: `serve` runs the daemon, the rest talks to its REST API."""
