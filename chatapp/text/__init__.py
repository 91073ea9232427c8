"""text layer (see DESIGN.md)."""
