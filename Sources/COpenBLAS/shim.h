#include <cblas.h>
/* LAPACK routines OpenBLAS exports (Debian ships no lapack.h with it): Cholesky factor and inverse. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);
