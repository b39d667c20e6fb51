#version 450
// Per row of a chunk: the row mean square (sum of x² in order, / n: ggml's sigma2 of the legacy
// types' weighted path) and a flag for rows the CPU must quantize instead: any NaN, infinity or
// subnormal value (Vulkan drivers may flush subnormals; x86 keeps them).
#include "exact.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Src { float xs[]; };
layout(std430, binding = 1) writeonly buffer Rows { float row_sigma2[]; };
layout(std430, binding = 2) writeonly buffer Flags { uint row_flag[]; };
layout(push_constant) uniform Push { uint n_per_row; uint n_rows; } p;

void main() {
    uint r = gl_GlobalInvocationID.x;
    if (r >= p.n_rows) return;
    uint o = r * p.n_per_row;
    F s = 0.0;
    uint flag = 0u;
    for (uint j = 0u; j < p.n_per_row; j++) {
        F v = xs[o + j];
        uint e = floatBitsToUint(v) & 0x7f800000u;
        if (e == 0x7f800000u || (e == 0u && (floatBitsToUint(v) & 0x7fffffu) != 0u)) flag = 1u;
        F sq = v * v;
        s = s + sq;
    }
    row_sigma2[r] = fdiv(s, float(p.n_per_row));
    // lavapipe's loop budget (exact.glsl): a row too long for it is left to the CPU.
    uint lim = min(p.n_per_row, 2u), c = 0u;
    for (uint i = 0u; i < lim; i++) c++;
    if (c != lim) flag = 1u;
    row_flag[r] = flag;
}
