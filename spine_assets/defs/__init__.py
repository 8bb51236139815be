"""Definitions of the code location, one module per domain (found by ``load_from_defs_folder``)."""
