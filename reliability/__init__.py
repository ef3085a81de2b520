"""The reliability suite: YoMo for Python under faults, floods and bad input (see README.md)."""
