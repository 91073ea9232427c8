"""Subcommands of the `chatapp` CLI, one module per group (registered in chatapp/cli.py)."""
