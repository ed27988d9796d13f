"""A CTC recogniser's last layer (its classifier) cut down to a subset of the characters.

PP-OCR recognisers end in MatMul -> Add -> Softmax over every character they know (6,906 for
the tiny model), most of them Chinese characters that Latin text never needs; scoring only the
568 Latin ones saved 10 % (a Tk form) to 19 % (an editor) of the fast reading's CPU time
(benchmarks/ocr_find's levers). `restrict_classifier` returns the
model with that layer's weights cut to the characters of a subset (`latin_subset`); the rest of
the model is unchanged, and onnxruntime runs it all (numpy's BLAS threads, spinning after each
call, would compete with onnxruntime's for the two cores).

The model file is edited in protobuf's wire format here, read by hand: the `onnx` package would
do it in a few lines, but importing it takes about 0.75 s and holds the GIL meanwhile (measured:
it stalled the main thread 0.83 s), while the engine is meant to load in the background as a
command starts. Only the messages and fields named below are read; everything else is copied
byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Field numbers from onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto, TypeProto).
MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_OUTPUT, GRAPH_VALUE_INFO = 1, 5, 12, 13
NODE_INPUT, NODE_OUTPUT, NODE_OP_TYPE = 1, 2, 4
TENSOR_DIMS, TENSOR_DATA_TYPE, TENSOR_FLOAT_DATA, TENSOR_NAME, TENSOR_RAW_DATA = 1, 2, 4, 8, 9
VALUE_NAME, VALUE_TYPE, TYPE_TENSOR, TENSOR_ELEM_TYPE = 1, 2, 1, 1
FLOAT = 1  # TensorProto.DataType.FLOAT
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a protobuf message this module can read."""


@dataclass(frozen=True)
class Field:
    """One field of a message: its number, wire type, value (bytes for LENGTH, else int) and raw bytes."""

    number: int
    wire: int
    value: bytes | int
    raw: bytes


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> Iterator[Field]:
    """The fields of a serialised message, in order."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == FIXED64:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == FIXED32:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        elif wire == LENGTH:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise WireError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise WireError("truncated field")
        yield Field(number, wire, value, buf[start:pos])


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | LENGTH) + _encode_varint(len(payload)) + payload


def _strings(buf: bytes, number: int) -> list[str]:
    return [f.value.decode() for f in fields(buf) if f.number == number and isinstance(f.value, bytes)]


def _ints(buf: bytes, number: int) -> list[int]:
    """A repeated integer field, packed or not."""
    out: list[int] = []
    for f in fields(buf):
        if f.number != number:
            continue
        if isinstance(f.value, int):
            out.append(f.value)
        else:
            pos = 0
            while pos < len(f.value):
                value, pos = _varint(f.value, pos)
                out.append(value)
    return out


@dataclass(frozen=True)
class _Node:
    op: str
    inputs: list[str]
    outputs: list[str]


def _tensor(buf: bytes) -> np.ndarray:
    """A FLOAT initializer's values."""
    import numpy as np

    name = next(iter(_strings(buf, TENSOR_NAME)), "")
    if next(iter(_ints(buf, TENSOR_DATA_TYPE)), 0) != FLOAT:
        raise WireError(f"initializer {name!r} is not float32")
    dims = _ints(buf, TENSOR_DIMS)
    raw = b"".join(f.value for f in fields(buf) if f.number == TENSOR_RAW_DATA and isinstance(f.value, bytes))
    if not raw:  # packed float_data
        raw = b"".join(f.value for f in fields(buf) if f.number == TENSOR_FLOAT_DATA and isinstance(f.value, bytes))
    return np.frombuffer(raw, "<f4").reshape(dims).astype(np.float32)


def _float_tensor(name: str, values: np.ndarray) -> bytes:
    """A TensorProto holding float32 `values` as raw data."""
    import numpy as np

    dims = b"".join(_encode_varint(TENSOR_DIMS << 3 | VARINT) + _encode_varint(d) for d in values.shape)
    return (dims + _encode_varint(TENSOR_DATA_TYPE << 3 | VARINT) + _encode_varint(FLOAT)
            + _length_field(TENSOR_NAME, name.encode())
            + _length_field(TENSOR_RAW_DATA, np.ascontiguousarray(values, "<f4").tobytes()))


def restrict_classifier(path: Path, ids: Sequence[int]) -> bytes | None:
    """The model at `path` with its final MatMul -> Add -> Softmax classifier cut down to the classes
    `ids` (in that order): its output's class k is the model's class ids[k], with probabilities
    among those classes. None when the model does not end that way (use it whole)."""
    import numpy as np

    model = path.read_bytes()
    graph_fields = [f for f in fields(model) if f.number == MODEL_GRAPH]
    if len(graph_fields) != 1 or not isinstance(graph_fields[0].value, bytes):
        return None
    graph = graph_fields[0].value
    nodes, constants, outputs = [], {}, []
    for f in fields(graph):
        if f.number == GRAPH_NODE and isinstance(f.value, bytes):
            nodes.append(_Node(next(iter(_strings(f.value, NODE_OP_TYPE)), ""),
                               _strings(f.value, NODE_INPUT), _strings(f.value, NODE_OUTPUT)))
        elif f.number == GRAPH_INITIALIZER and isinstance(f.value, bytes):
            constants[next(iter(_strings(f.value, TENSOR_NAME)), "")] = f.value
        elif f.number == GRAPH_OUTPUT and isinstance(f.value, bytes):
            outputs.append(f.value)
    made_by = {out: node for node in nodes for out in node.outputs}
    path_names: set[str] = set()  # the tensors from the classifier's MatMul to the output

    def producer(name: str) -> _Node | None:
        node = made_by.get(name)
        while node is not None and node.op == "Identity" and node.inputs:
            path_names.update(node.outputs)
            node = made_by.get(node.inputs[0])
        if node is not None:
            path_names.update(node.outputs)
        return node

    if len(outputs) != 1:
        return None
    output_name = next(iter(_strings(outputs[0], VALUE_NAME)), "")
    softmax = producer(output_name)
    add = producer(softmax.inputs[0]) if softmax is not None and softmax.op == "Softmax" else None
    if add is None or add.op != "Add" or len(add.inputs) != 2:
        return None
    bias_name = next((name for name in add.inputs if name in constants), None)
    matmul = producer(next((name for name in add.inputs if name != bias_name), ""))
    if bias_name is None or matmul is None or matmul.op != "MatMul" or matmul.inputs[1] not in constants:
        return None
    weight = _tensor(constants[matmul.inputs[1]])
    bias = _tensor(constants[bias_name])
    if weight.ndim != 2 or bias.shape != (weight.shape[1],) or not ids or max(ids) >= len(bias):
        return None
    keep = np.asarray(ids)
    replaced = {matmul.inputs[1]: _float_tensor(matmul.inputs[1], weight[:, keep]),
                bias_name: _float_tensor(bias_name, bias[keep])}
    tensor_type = _length_field(TYPE_TENSOR, _encode_varint(TENSOR_ELEM_TYPE << 3 | VARINT) + _encode_varint(FLOAT))
    output = _length_field(VALUE_NAME, output_name.encode()) + _length_field(VALUE_TYPE, tensor_type)
    parts: list[bytes] = []
    for f in fields(graph):
        if f.number == GRAPH_INITIALIZER and isinstance(f.value, bytes):
            name = next(iter(_strings(f.value, TENSOR_NAME)), "")
            parts.append(_length_field(GRAPH_INITIALIZER, replaced[name]) if name in replaced else f.raw)
        elif f.number == GRAPH_OUTPUT:
            parts.append(_length_field(GRAPH_OUTPUT, output))  # its recorded shape named every class
        elif f.number == GRAPH_VALUE_INFO and isinstance(f.value, bytes) and \
                next(iter(_strings(f.value, VALUE_NAME)), "") in path_names:
            continue  # shapes recorded for the classifier's tensors: no longer true
        else:
            parts.append(f.raw)
    new_graph = b"".join(parts)
    return b"".join(_length_field(MODEL_GRAPH, new_graph) if f.number == MODEL_GRAPH else f.raw
                    for f in fields(model))


def latin_subset(chars: Sequence[str]) -> list[int]:
    """Class ids (blank first) of the characters Latin-script screen text uses: Latin letters,
    digits, punctuation and symbols (U+0000-024F, U+1E00-1EFF, U+2000-2BFF), and the space."""
    keep = [0]
    for i, char in enumerate(chars):
        if i == 0 or not char:
            continue
        code = ord(char[0])
        if code < 0x250 or 0x1E00 <= code < 0x1F00 or 0x2000 <= code < 0x2C00:
            keep.append(i)
    return keep
