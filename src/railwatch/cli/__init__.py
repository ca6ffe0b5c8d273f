"""The ``railwatch`` command line."""
