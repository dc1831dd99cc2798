"""Converts a TF.js graph model to a TF SavedModel for the bench's KServe contender.

Usage: python convert.py <model.json> <export-dir>

tfjs-graph-converter runs in TFLITE compat mode, which splits TF.js's fused ops (_FusedConv2D,
_FusedMatMul) back into plain ops: TF refuses the fused nodes as the converter writes them (their TArgs
attribute is missing). The result is an ordinary SavedModel with a serving_default signature.
"""

import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"


def import_without_init(*packages: str) -> None:
    """Registers packages as bare modules, so their submodules import without the package __init__.

    tensorflowjs's __init__ imports jax, flax, tf_keras, tensorflow_hub and tensorflow_decision_forests,
    none of them installed (nor installable beside TF 2.21); tfjs_graph_converter's imports
    tensorflowjs's. The converter needs only small modules of both.
    """
    for name in packages:
        sys.modules[name] = importlib.util.module_from_spec(importlib.util.find_spec(name))


import_without_init("tensorflowjs", "tensorflowjs.converters", "tfjs_graph_converter")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tfjs_graph_converter import api  # noqa: E402
from tfjs_graph_converter.common import CompatMode  # noqa: E402


def main(model_json: str, export_dir: str) -> None:
    api.graph_model_to_saved_model(model_json, export_dir, compat_mode=CompatMode.TFLITE)
    # Load it back as the server will, so a broken conversion fails here rather than in the bench.
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    spec = next(iter(serve.structured_input_signature[1].values()))
    shape = [1 if d is None else d for d in spec.shape]
    outputs = serve(tf.constant(np.zeros(shape, spec.dtype.as_numpy_dtype)))
    print(
        f"Converted {model_json}: input {spec.name} {spec.shape}, "
        + ", ".join(f"output {k} {v.shape}" for k, v in outputs.items()),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
