/// Kernels for the types that need no codebook: float formats, legacy 32-blocks,
/// k-quants, ternary, fp4 and 1-bit types.
let basicKernels: [any QuantType.Type] = []
