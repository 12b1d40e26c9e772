"""Reading a session record after the fact: the typed events again, turns and their latency,
the HTML report."""
