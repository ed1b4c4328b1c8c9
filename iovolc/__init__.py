"""iovolc: Juno JIRAM downlink -> Io volcanic hotspot catalog (pure science core)."""

__version__ = "0.1.0"
