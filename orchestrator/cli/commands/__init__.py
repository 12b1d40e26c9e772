"""Sub-commands of the ``creature`` CLI."""
