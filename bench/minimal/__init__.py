"""The webhook benchmark's peers' own tables: what a host writing its own receiver would keep."""
