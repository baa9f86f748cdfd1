"""A small GGUF file holding one tensor of every type Winnow reads (and one it refuses), with the
dequantised values the `gguf` package computes, for Tests/WinnowTests/GGUFTests.swift.

    /tmp/ref/bin/pip install gguf numpy safetensors
    /tmp/ref/bin/python scripts/reference/make_gguf_golden.py Tests/Fixtures/gguf

Writes types.gguf (GGUF v3: metadata of every value type, tensors t_f32, t_f16, t_bf16, t_q8_0, t_q4_0,
t_q4_1 of shape [2, 64] and t_q5_0, which Winnow refuses) and types-golden.safetensors (each readable
tensor dequantised by gguf.quants.dequantize, float32, shape [2, 64]). Deterministic (seed 0).
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFWriter, quants
from safetensors.numpy import save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
w = GGUFWriter(os.path.join(out, "types.gguf"), arch="llama")
w.add_uint8("test.u8", 200)
w.add_int8("test.i8", -100)
w.add_uint16("test.u16", 60000)
w.add_int16("test.i16", -30000)
w.add_uint32("test.u32", 4000000000)
w.add_int32("test.i32", -2000000000)
w.add_float32("test.f32", 0.15625)
w.add_bool("test.bool", True)
w.add_string("test.string", "héllo")
w.add_uint64("test.u64", 2**63 + 5)
w.add_int64("test.i64", -(2**62))
w.add_float64("test.f64", 1e-300)
w.add_array("test.strings", ["a", "Ġb", "c d"])
w.add_array("test.ints", [1, 2, 3])
golden = {}
for name, qtype in [("t_f32", T.F32), ("t_f16", T.F16), ("t_bf16", T.BF16), ("t_q8_0", T.Q8_0),
                    ("t_q4_0", T.Q4_0), ("t_q4_1", T.Q4_1), ("t_q5_0", T.Q5_0)]:
    x = (rng.standard_normal((2, 64)) * 3).astype(np.float32)
    x[0, :4] = [0.0, -0.0, 1e-6, 65504.0]          # zero, signed zero, an F16 subnormal, the F16 maximum
    if qtype == T.F32:
        w.add_tensor(name, x)
        golden[name] = x
        continue
    q = quants.quantize(x, qtype)
    w.add_tensor(name, q, raw_dtype=qtype)
    if qtype != T.Q5_0:
        golden[name] = quants.dequantize(q, qtype).astype(np.float32).reshape(2, 64)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
save_file(golden, os.path.join(out, "types-golden.safetensors"), metadata={"format": "np"})
print("wrote", os.path.join(out, "types.gguf"), os.path.getsize(os.path.join(out, "types.gguf")), "bytes")
