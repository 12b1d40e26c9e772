"""The project's neutral ground: what every package may import (the web layer, the settings base,
the error root), and which itself imports nothing of the project outside this folder.

It lives inside the voice package because the card fixes the top-level packages; the import rule
(tests/test_import_direction.py) lets ``face`` and ``affect`` import this folder and nothing else of
``track2_voice``, so the face still knows nothing of the fast loop and nothing of the brain."""
