"""pilotlab: the command, its settings, the error hierarchy and the embedded services.

The data flow lives in the sibling packages: devices/ (what a device says), ingest/ (broker to
database), store/ (schema and queries), api/ (HTTP), simulators/ (fleets that speak the contract).
"""

__version__ = "0.1.0"
