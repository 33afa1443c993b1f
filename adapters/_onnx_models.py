"""One-node ONNX models as Python source text: what the ``onnxruntime`` adapter runs.

Each spec call becomes a model of a single ONNX operator (``SoftmaxCrossEntropyLoss``,
``NegativeLogLikelihoodLoss``, ``Softmax``, ``LogSoftmax``, ``Sigmoid``) built with
``onnx.helper`` and run in an ``onnxruntime.InferenceSession`` on the
``CPUExecutionProvider``. The model is written once, as source text
(:meth:`NodeModel.source`): the adapter executes that text to build its session, and
a repro snippet prints the same text, so the snippet is the very model that ran.

Input dimensions are symbolic (``input_0``, ``input_1``, ...), so one session serves
every shape of a given rank; the adapter caches sessions by :class:`NodeModel`
(operator, dtypes, ranks, attributes). Sessions run on one thread, so a result does
not depend on the machine's core count, and log nothing (errors raise). Framework-free.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The opset every model imports: 22, where NegativeLogLikelihoodLoss was last revised
#: (Softmax, LogSoftmax, Sigmoid and SoftmaxCrossEntropyLoss are their opset-13 versions).
OPSET = 22
#: IR version 10 (ONNX 1.16+): what onnxruntime 1.32 reads.
IR_VERSION = 10

#: NumPy dtype name -> ``onnx.TensorProto`` element type name.
ELEM_TYPES: dict[str, str] = {
    "float16": "FLOAT16",
    "bfloat16": "BFLOAT16",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "int64": "INT64",
}

IMPORTS = (
    "import numpy as np",
    "import onnx",
    "import onnxruntime as ort",
    "from onnx import TensorProto, helper",
)


@dataclass(frozen=True)
class NodeModel:
    """A model of one ONNX operator: graph inputs named as the spec's arguments.

    ``inputs`` are ``(name, dtype name, rank)``; ``output`` is ``(dtype name, rank)``;
    ``attributes`` are the node's attributes in order. Hashable: the session cache key.
    """

    op: str
    inputs: tuple[tuple[str, str, int], ...]
    output: tuple[str, int]
    attributes: tuple[tuple[str, int | str], ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.inputs)

    def source(self) -> str:
        """The lines that build ``model`` and its ``session`` (after :data:`IMPORTS`)."""
        attributes = "".join(f", {k}={v!r}" for k, v in self.attributes)
        dtype, rank = self.output
        value_infos = [
            f"        helper.make_tensor_value_info({name!r}, TensorProto.{ELEM_TYPES[kind]}, "
            f"{[f'{name}_{i}' for i in range(r)]!r}),"
            for name, kind, r in self.inputs
        ]
        lines = [
            f"node = helper.make_node({self.op!r}, {list(self.input_names)!r}, ['output']{attributes})",
            "graph = helper.make_graph(",
            "    [node],",
            "    'lossconf',",
            "    [",
            *value_infos,
            "    ],",
            f"    [helper.make_tensor_value_info('output', TensorProto.{ELEM_TYPES[dtype]}, "
            f"{[f'output_{i}' for i in range(rank)]!r})],",
            ")",
            f"model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', {OPSET})], "
            f"ir_version={IR_VERSION})",
            "onnx.checker.check_model(model, full_check=True)",
            "options = ort.SessionOptions()",
            "options.intra_op_num_threads = 1",
            "options.log_severity_level = 4  # no log lines: errors raise as Python exceptions",
            "session = ort.InferenceSession(model.SerializeToString(), options, "
            "providers=['CPUExecutionProvider'])",
        ]
        return "\n".join(lines) + "\n"
