/// Kernels for the codebook ("iq") types built on ggml's grids.
let iqGridKernels: [any QuantType.Type] = [
    IQ2_XXS.self,
    IQ2_XS.self,
    IQ2_S.self,
    IQ3_XXS.self,
    IQ3_S.self,
    IQ1_S.self,
    IQ1_M.self,
]
