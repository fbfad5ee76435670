"""The built-in family tables: data only, registered through entry points like any plugin."""
