// Non-finite scans of stored float data (f32, f16, bf16): the check convert and quantize run on
// every weight before writing it (as llama.cpp's ggml_validate_row_data). Memory-bound: the loops
// test 64 values per step with no early exit inside the step, which the compiler vectorizes
// (SSE2 on baseline x86-64), and find the exact index only in the step that holds a hit.
#include "smelt_kernels.h"

#define SCAN_STEP 64

size_t smelt_first_exponent_all_ones_u16(const uint16_t *u, size_t n, uint16_t mask) {
    size_t i = 0;
    for (; i + SCAN_STEP <= n; i += SCAN_STEP) {
        unsigned hit = 0;
        for (int j = 0; j < SCAN_STEP; j++) hit |= (uint16_t)(u[i + j] & mask) == mask;
        if (hit) break;
    }
    for (; i < n; i++) if ((uint16_t)(u[i] & mask) == mask) return i;
    return n;
}

size_t smelt_first_nonfinite_f32(const float *x, size_t n) {
    const uint32_t *u = (const uint32_t *)x;
    const uint32_t mask = 0x7F800000u;
    size_t i = 0;
    for (; i + SCAN_STEP <= n; i += SCAN_STEP) {
        unsigned hit = 0;
        for (int j = 0; j < SCAN_STEP; j++) hit |= (u[i + j] & mask) == mask;
        if (hit) break;
    }
    for (; i < n; i++) if ((u[i] & mask) == mask) return i;
    return n;
}
