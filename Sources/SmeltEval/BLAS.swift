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

    /// C[m×n] = alpha · A[k×m]ᵀ · B[k×n] + beta · C (row-major).
    @inline(__always)
    static func gemmTN(m: Int, n: Int, k: Int, alpha: Float = 1,
                       a: UnsafePointer<Float>, lda: Int,
                       b: UnsafePointer<Float>, ldb: Int,
                       beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = configured
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C in double precision (row-major; `transA`/`transB`
    /// take A as k×m / B as n×k).
    static func dgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Double = 1,
                      a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                      beta: Double = 0, c: UnsafeMutablePointer<Double>, ldc: Int) {
        _ = configured
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// LAPACK `dpotrf`: the Cholesky factor of the symmetric positive-definite n×n matrix `a`
    /// (row-major, in place). `upper`: a = UᵀU, U kept in the upper triangle; else a = LLᵀ, L in the
    /// lower triangle. The other triangle is left as it was. Returns false when `a` is not positive definite.
    static func cholesky(_ a: UnsafeMutablePointer<Double>, n: Int, upper: Bool) -> Bool {
        _ = configured
        // row-major upper = column-major lower
        var uplo: CChar = upper ? 0x4C : 0x55  // "L" : "U"
        var nn = Int32(n), lda = Int32(n), info: Int32 = 0
        dpotrf_(&uplo, &nn, a, &lda, &info)
        return info == 0
    }

    /// LAPACK `dpotri`: from the Cholesky factor made by `cholesky(_, upper: false)`, the inverse of
    /// the original matrix, written in the lower triangle (row-major). Returns false when singular.
    static func choleskyInverse(_ a: UnsafeMutablePointer<Double>, n: Int) -> Bool {
        _ = configured
        var uplo: CChar = 0x55  // column-major "U" = row-major lower
        var nn = Int32(n), lda = Int32(n), info: Int32 = 0
        dpotri_(&uplo, &nn, a, &lda, &info)
        return info == 0
    }
}
