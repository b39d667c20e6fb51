#!/usr/bin/env python3
"""Rewrite a GGUF file with gguf-py's GGUFWriter, split as convert_hf_to_gguf.py
--split-max-tensors / --split-max-size splits (test reference for Smelt's reader
and for `smelt convert --split-max-*`).

usage: gguf-py-split.py IN.gguf OUT.gguf (--split-max-tensors N | --split-max-size BYTES)
Writes OUT-00001-of-0000n.gguf … (or OUT.gguf when everything fits in one file)."""
import argparse
import numpy as np
from gguf import GGUFReader, GGUFWriter, GGUFValueType

ap = argparse.ArgumentParser()
ap.add_argument("input")
ap.add_argument("output")
ap.add_argument("--split-max-tensors", type=int, default=0)
ap.add_argument("--split-max-size", type=int, default=0)
a = ap.parse_args()

r = GGUFReader(a.input)
arch = r.fields["general.architecture"].contents()
w = GGUFWriter(a.output, arch, split_max_tensors=a.split_max_tensors, split_max_size=a.split_max_size)
for name, f in r.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    vtype = f.types[0]
    sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
    w.add_key_value(name, f.contents(), vtype, sub_type=sub)
for t in r.tensors:
    # raw bytes with the ggml type: shape is given in numpy (reversed) order
    w.add_tensor(t.name, np.asarray(t.data), raw_shape=list(reversed([int(x) for x in t.shape])), raw_dtype=t.tensor_type)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
