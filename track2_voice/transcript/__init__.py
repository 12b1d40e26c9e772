"""The user's side as words: a transcript worker off the fast loop and its recognisers.

``worker.TranscriptWorker`` takes the user's frames from the fast loop (bounded, drop-oldest,
counted, like the VAD worker) and publishes ``UserWord`` events on the mic clock. What hears
the words is a ``Recognizer`` (``base.py``): pocketsphinx (the English model in its wheel),
Kyutai's streaming STT protocol (``kyutai_remote.py``), built by ``create_recognizer``.
"""
