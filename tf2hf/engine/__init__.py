"""The shared engine: the schema of family tables, the registry, planning and transforms."""
