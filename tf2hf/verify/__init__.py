"""Verification: the written folder against independent NumPy references of the source graphs."""
