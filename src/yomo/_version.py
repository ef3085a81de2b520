"""The package version and the wire protocol version it speaks."""

__all__ = ["SPEC_VERSION", "__version__"]

__version__ = "0.1.0"

#: The YoMo wire protocol version (Go: core/frame/frame.go, "2024-01-03").
SPEC_VERSION = "2024-01-03"
