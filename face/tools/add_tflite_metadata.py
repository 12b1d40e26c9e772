"""Give MediaPipe's short-range face detector the metadata the Tasks API needs.

The npm package ``@mediapipe/face_detection`` ships ``face_detection_short_range.tflite``
(Apache-2.0) without TFLite metadata, and the Tasks ``FaceDetector`` refuses a float model
without ``NormalizationOptions``. This adds exactly that (RGB image, (x - 127.5) / 127.5,
as the model was trained) so the browser can run it fully offline.

Build-time only; needs ``pip install tflite-support==0.4.4`` (e.g. in a throwaway venv):

    python face/tools/add_tflite_metadata.py IN.tflite face/static/vendor/mediapipe/face_detector.tflite
"""

from __future__ import annotations

import shutil
import sys

import flatbuffers
from tflite_support import metadata as _metadata
from tflite_support import metadata_schema_py_generated as fb

NORM_MEAN = 127.5
NORM_STD = 127.5


def build_metadata() -> bytes:
    inp = fb.TensorMetadataT()
    inp.name = "image"
    inp.content = fb.ContentT()
    inp.content.contentProperties = fb.ImagePropertiesT()
    inp.content.contentProperties.colorSpace = fb.ColorSpaceType.RGB
    inp.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    norm = fb.ProcessUnitT()
    norm.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    norm.options = fb.NormalizationOptionsT()
    norm.options.mean = [NORM_MEAN]
    norm.options.std = [NORM_STD]
    inp.processUnits = [norm]
    regressors = fb.TensorMetadataT()
    regressors.name = "regressors"
    scores = fb.TensorMetadataT()
    scores.name = "classificators"
    sub = fb.SubGraphMetadataT()
    sub.inputTensorMetadata = [inp]
    sub.outputTensorMetadata = [regressors, scores]
    model = fb.ModelMetadataT()
    model.name = "face_detection_short_range"
    model.description = "BlazeFace short-range face detector (MediaPipe, Apache-2.0)"
    model.license = "Apache-2.0"
    model.subgraphMetadata = [sub]
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), _metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    return bytes(b.Output())


def main(src: str, dst: str) -> None:
    if src != dst:
        shutil.copyfile(src, dst)
    pop = _metadata.MetadataPopulator.with_model_file(dst)
    pop.load_metadata_buffer(build_metadata())
    pop.populate()
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
