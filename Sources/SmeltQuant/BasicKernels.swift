/// Kernels for the types that need no codebook: float formats, legacy 32-blocks,
/// k-quants, ternary, fp4 and 1-bit types.
let basicKernels: [any QuantType.Type] = [
    F16.self, BF16.self,
    Q4_0.self, Q4_1.self, Q5_0.self, Q5_1.self, Q8_0.self,
    Q2_K.self, Q3_K.self, Q4_K.self, Q5_K.self, Q6_K.self,
    IQ4_NL.self, IQ4_XS.self,
    TQ1_0.self, TQ2_0.self,
    MXFP4.self, NVFP4.self, Q1_0.self,
]
