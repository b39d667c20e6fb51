// Dequantization entry point shared by the <type>.comp shaders compiled with -DDEQUANT: the
// including file defines BS, BB and dequant_block(g), which writes block g's BS floats.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Src { uint qwords[]; };
layout(std430, binding = 1) writeonly buffer Dst { float ys[]; };
layout(push_constant) uniform Push { uint n_blocks; } p;

uint get8(uint pos) { return (qwords[pos >> 2] >> ((pos & 3u) * 8u)) & 0xffu; }
uint get16(uint pos) { return get8(pos) | (get8(pos + 1u) << 8); }
uint get32(uint pos) { return get16(pos) | (get16(pos + 2u) << 16); }

void dequant_block(uint g);

void main() {
    uint g = gl_GlobalInvocationID.x;
    if (g >= p.n_blocks) return;
    dequant_block(g);
}
