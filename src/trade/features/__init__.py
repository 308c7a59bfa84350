"""Indicators and structure detectors: one definition each, batch and incremental drivers."""
