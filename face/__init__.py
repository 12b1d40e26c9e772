"""The creature's face: a starlette/uvicorn server that streams face states to a browser page.

The page (``face/static``) is a pure renderer; the server owns no policy. Callers publish states
(``{"emotion", "mouth", "speaking", ...}``) from any thread with :meth:`FaceServer.publish`.
"""

from face.config import FaceConfig
from face.server import FaceServer

__all__ = ["FaceConfig", "FaceServer"]
