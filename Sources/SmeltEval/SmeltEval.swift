// SmeltEval: see docs/ARCHITECTURE.md.
import COpenBLAS
import CZstd
