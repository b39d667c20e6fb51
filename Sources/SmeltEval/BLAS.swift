import COpenBLAS

/// The one place SmeltEval calls OpenBLAS.
enum BLAS {
    /// Makes every OpenBLAS call single-threaded: SmeltEval parallelises
    /// over row blocks itself and calls sgemm from each worker.
    static let configured: Void = { openblas_set_num_threads(1) }()

    /// C[m×n] = alpha · A[m×k] · B[n×k]ᵀ + beta · C (row-major; B given as rows).
    @inline(__always)
    static func gemmNT(m: Int, n: Int, k: Int, alpha: Float = 1,
                       a: UnsafePointer<Float>, lda: Int,
                       b: UnsafePointer<Float>, ldb: Int,
                       beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = configured
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// C[m×n] = alpha · A[m×k] · B[k×n] + beta · C (row-major).
    @inline(__always)
    static func gemmNN(m: Int, n: Int, k: Int, alpha: Float = 1,
                       a: UnsafePointer<Float>, lda: Int,
                       b: UnsafePointer<Float>, ldb: Int,
                       beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = configured
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
