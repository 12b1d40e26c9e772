"""The creature's slow loop and its command line. Imports track2_voice, affect and face."""
