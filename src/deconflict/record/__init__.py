"""The tamper-evident record: canonical JSON, the Merkle log, signatures and entries."""
