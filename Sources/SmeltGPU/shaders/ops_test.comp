#version 450
// Test kernel for the emulated operations: for each operand pair (a, b) writes a/b, sqrt(a),
// f16(a) | bf16(a) << 16.
#include "exact.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Src { uint ab[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint outs[]; };
layout(push_constant) uniform Push { uint n; } p;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= p.n) return;
    float a = uintBitsToFloat(ab[2u * i]), b = uintBitsToFloat(ab[2u * i + 1u]);
    outs[3u * i] = floatBitsToUint(fdiv(a, b));
    outs[3u * i + 1u] = floatBitsToUint(fsqrt(a));
    outs[3u * i + 2u] = f16_bits(a) | (bf16_bits(a) << 16);
}
