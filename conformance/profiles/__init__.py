"""Bundled conformance profiles: v<N>.yaml, the thresholds a conformance run judges a device by."""
