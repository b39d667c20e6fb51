// Quantization entry point shared by the <type>.comp shaders. The including file defines
// BS (values per block), BB (bytes per block) and quant_block(g, base), which quantizes global
// block g of the chunk and stores its BB bytes at byte `base` of W. One invocation writes two
// consecutive blocks (2·BB is a multiple of 4, so no two invocations share an output word).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Src { float xs[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint ys[]; };
layout(std430, binding = 2) readonly buffer Imp { float qws[]; };   // imatrix: ne2 rows of n_per_row
layout(std430, binding = 3) readonly buffer Rows { float row_sigma2[]; };   // per row of the chunk (rowprep)
layout(std430, binding = 4) buffer Flags { uint row_flags[]; };   // per row: 1 = the CPU quantizes it
layout(push_constant) uniform Push {
    uint n_per_row;   // values per row
    uint n_blocks;    // blocks in this chunk
    uint row_base;    // tensor row of the chunk's first row
    uint ne1;         // tensor rows per matrix (importance is per matrix: row / ne1 % ne2)
    uint ne2;
    uint has_imp;     // 1: importance-weighted path
    uint burn;        // test switch: loop iterations spent before the work (0)
} p;

// Row (within the chunk) of block g.
uint row_of(uint g) { return g / (p.n_per_row / BS); }
// Index of block g's first importance weight.
uint imp_index(uint g) {
    uint bpr = p.n_per_row / BS;
    uint row = p.row_base + g / bpr;
    return ((row / p.ne1) % p.ne2) * p.n_per_row + (g % bpr) * BS;
}

void quant_block(uint g, uint base);

// Spends p.burn loop iterations (tests exhaust lavapipe's loop budget with it).
void burn() {
    uint c = 0u;
    for (uint i = 0u; i < p.burn; i++) c += i;
    if (c == 0xdeadbeefu) atomicOr(row_flags[0], 2u);
}

// lavapipe's loop budget (exact.glsl): a loop of two iterations the compiler cannot unroll runs
// once when the budget ran out, and then the blocks g0 ..< g0 + nb may be incomplete: their rows
// are flagged for the CPU. Never fires on a GPU without such a limit.
void canary(uint g0, uint nb) {
    uint lim = min(p.n_per_row, 2u);
    uint c = 0u;
    for (uint i = 0u; i < lim; i++) c++;
    if (c != lim) {
        atomicOr(row_flags[row_of(g0)], 1u);
        atomicOr(row_flags[row_of(g0 + nb - 1u)], 1u);
    }
}

#ifdef DIRECT_WORDS
// BB is a multiple of 4: one invocation per block, quant_block writes whole words of ys itself
// (no private byte buffer: Mesa 22's lavapipe miscompiles large private arrays).
void main() {
    uint g = gl_GlobalInvocationID.x;
    if (g >= p.n_blocks) return;
    burn();
    quant_block(g, g * uint(BB / 4));
    canary(g, 1u);
}
#elif defined(CUSTOM_MAIN)
// The including file has its own main.
#else
#define WORDS (BB / 2)
uint W[WORDS];

void put8(uint pos, uint v) { W[pos >> 2] |= (v & 0xffu) << ((pos & 3u) * 8u); }
void put16(uint pos, uint v) { put8(pos, v); put8(pos + 1u, v >> 8); }
void put32(uint pos, uint v) { put16(pos, v); put16(pos + 2u, v >> 16); }

void main() {
    uint g0 = 2u * gl_GlobalInvocationID.x;
    if (g0 >= p.n_blocks) return;
    burn();
    for (int k = 0; k < WORDS; k++) W[k] = 0u;
    quant_block(g0, 0u);
    uint nb = 1u;
    if (g0 + 1u < p.n_blocks) { quant_block(g0 + 1u, uint(BB)); nb = 2u; }
    uint nwords = (nb * uint(BB) + 3u) / 4u;
    uint wo = g0 * uint(BB) / 4u;
    for (uint k = 0u; k < nwords; k++) ys[wo + k] = W[k];
    canary(g0, nb);
}
#endif
