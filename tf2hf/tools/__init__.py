"""Tools beside conversion: ``inspect`` (index only) and ``slim`` (slots removed)."""
