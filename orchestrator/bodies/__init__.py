"""Bodies: programs that give the creature's calls a body (each in an environment of its own).
Nothing here is imported by the creature's slow or fast loop."""
