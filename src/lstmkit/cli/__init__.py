"""The `lstmkit` command: argument parsing and printing only; the work is in lstmkit.apps."""
