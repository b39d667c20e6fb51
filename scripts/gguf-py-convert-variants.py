#!/usr/bin/env python3
"""Test reference: rewrite llama.cpp's f32 conversion of a checkpoint as
convert_hf_to_gguf.py would have written it with --outtype tq1_0 / tq2_0 or
--vocab-only, using gguf-py (its writer and its numpy quantizers).

usage: gguf-py-convert-variants.py IN-f32.gguf OUT.gguf (tq1_0 | tq2_0 | vocab-only)"""
import sys
import numpy as np
import gguf
from gguf import GGUFReader, GGUFWriter, GGUFValueType, GGMLQuantizationType as Q

src, dst, mode = sys.argv[1:4]
r = GGUFReader(src)
w = GGUFWriter(dst, r.fields["general.architecture"].contents())
ftype = {"tq1_0": 36, "tq2_0": 37}.get(mode)
for name, f in r.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    if mode == "vocab-only" and name == "general.size_label":
        continue  # no tensors were added, so gguf-py counts no parameters
    vtype = f.types[0]
    sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
    value = ftype if (name == "general.file_type" and ftype is not None) else f.contents()
    w.add_key_value(name, value, vtype, sub_type=sub)
if mode == "vocab-only":
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    sys.exit(0)
qt = Q.TQ1_0 if mode == "tq1_0" else Q.TQ2_0
for t in r.tensors:
    data = np.array(t.data)
    if t.tensor_type != Q.F32 or data.ndim <= 1 or t.name.endswith("_norm.weight") or not t.name.endswith(".weight"):
        w.add_tensor(t.name, data, raw_dtype=t.tensor_type)
        continue
    q = Q.F16 if t.name in ("token_embd.weight", "per_layer_token_embd.weight", "output.weight") else qt
    try:
        out = gguf.quants.quantize(data, q)
    except gguf.QuantError:
        q = Q.F16
        out = gguf.quants.quantize(data, q)
    w.add_tensor(t.name, out, raw_dtype=q)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
