// swift-tools-version:6.1
// Smelt: a quantization toolchain for large language models.
// Module layout (dependencies point one way, see docs/ARCHITECTURE.md):
//   C shims (CZstd, COpenBLAS, CVulkan) and CSmeltKernels (Smelt's own AVX-512 BF16 / F16C loops,
//   the quantizers' scale searches for portable x86-64 / AVX2 / AVX-512, chosen at run time)
//   SmeltFormats   GGUF, safetensors, JSON, ggml type table, float formats
//   SmeltQuant     per-block quantization kernels (one type per ggml block type)
//   SmeltCompressedTensors  compressed-tensors (llm-compressor / vLLM) schemes, arithmetic and checkpoints
//   SmeltTokenizer BPE / SentencePiece tokenizers
//   SmeltModel     architecture tables, HF config, model cards
//   SmeltConvert / SmeltQuantize / SmeltEval   pipelines
//   SmeltCalibration GPTQ, AWQ, SmoothQuant on the evaluator's block-by-block forward pass
//   SmeltLicense   license knowledge base and lineage resolution
//   SmeltStore     the results store (SQLite through GRDB; the only SQL)
//   SmeltSweep     sweeps: plan, local pool, Slurm job arrays
//   SmeltReport    recording runs, llama-perplexity log import, reports (table/md/csv/json/html), model cards
//   smelt          the command line (argument parsing only)
import PackageDescription

// Release builds: -Ounchecked only for the modules whose inner loops work on validated sizes
// (kernels, the evaluator, the quantizer); file readers and everything else keep Swift's overflow
// and bounds checks, so a size from a hostile file that slipped past validation traps instead of
// corrupting memory (docs/RELIABILITY.md).
let swiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-wmo"], .when(configuration: .release)),
]
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "Smelt",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "smelt", targets: ["smelt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
    ],
    targets: [
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // Headers only: SmeltGPU loads libvulkan.so.1 at run time (no loader → a clear error, not a crash).
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan", providers: [.apt(["libvulkan-dev"])]),

        // Smelt's own native inner loops (AVX-512 BF16, F16C) with run-time CPU checks
        .target(name: "CSmeltKernels", path: "Sources/CSmeltKernels",
                cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))]),

        .target(name: "SmeltFormats", dependencies: ["CSmeltKernels"], swiftSettings: swiftSettings),
        .target(name: "SmeltQuant", dependencies: ["SmeltFormats", "CSmeltKernels"], swiftSettings: kernelSettings),
        // compressed-tensors: llm-compressor's schemes, its quantization arithmetic, HF checkpoints for vLLM
        .target(name: "SmeltCompressedTensors", dependencies: ["SmeltFormats"], swiftSettings: kernelSettings),
        // The only module that talks to Vulkan; GLSL sources in shaders/ (SPIR-V: scripts/build-shaders.sh)
        .target(name: "SmeltGPU", dependencies: ["SmeltFormats", "SmeltQuant", "CVulkan"], exclude: ["shaders"],
                swiftSettings: swiftSettings),
        .target(name: "SmeltTokenizer", dependencies: ["SmeltFormats"], swiftSettings: swiftSettings),
        .target(name: "SmeltModel", dependencies: ["SmeltFormats", "SmeltTokenizer",
                                                   .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        .target(name: "SmeltConvert", dependencies: ["SmeltFormats", "SmeltQuant", "SmeltTokenizer", "SmeltModel"],
                swiftSettings: swiftSettings),
        .target(name: "SmeltQuantize", dependencies: ["SmeltFormats", "SmeltQuant", "SmeltModel", "SmeltConvert", "SmeltCompressedTensors",
                                                      .product(name: "Yams", package: "Yams")],
                swiftSettings: kernelSettings),
        .target(name: "SmeltEval", dependencies: ["SmeltFormats", "SmeltQuant", "SmeltTokenizer", "SmeltModel", "SmeltCompressedTensors",
                                                  "COpenBLAS", "CZstd", "CSmeltKernels"],
                swiftSettings: kernelSettings),
        .target(name: "SmeltLicense", dependencies: ["SmeltFormats", "SmeltModel", .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        // The results store: the only code that talks SQL (GRDB over SQLite).
        .target(name: "SmeltStore", dependencies: ["SmeltFormats", .product(name: "GRDB", package: "GRDB.swift")],
                swiftSettings: swiftSettings),
        // Recording runs into the store, importing llama-perplexity logs, reports and model cards.
        .target(name: "SmeltReport", dependencies: ["SmeltFormats", "SmeltStore", "SmeltEval", "SmeltQuantize", "SmeltCompressedTensors"],
                swiftSettings: swiftSettings),
        // Sweeps: many quants of one model, evaluated against one base, locally or as a Slurm job array.
        .target(name: "SmeltSweep", dependencies: ["SmeltFormats", "SmeltStore", "SmeltReport", "SmeltQuantize", "SmeltModel",
                                                   .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        // Calibration algorithms on the evaluator's block-by-block forward pass: GPTQ, AWQ, SmoothQuant.
        .target(name: "SmeltCalibration", dependencies: ["SmeltFormats", "SmeltEval", "SmeltCompressedTensors"], swiftSettings: kernelSettings),
        .executableTarget(name: "smelt", dependencies: [
            "SmeltFormats", "SmeltQuant", "SmeltTokenizer", "SmeltModel", "SmeltConvert", "SmeltQuantize",
            "SmeltEval", "SmeltCalibration", "SmeltLicense", "SmeltStore", "SmeltReport", "SmeltSweep", "SmeltGPU",
            "SmeltCompressedTensors",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swiftSettings),

        .target(name: "SmeltTestSupport", dependencies: ["SmeltFormats"], path: "Tests/SmeltTestSupport"),
        .testTarget(name: "SmeltFormatsTests", dependencies: ["SmeltFormats", "SmeltTestSupport", "CSmeltKernels"]),
        .testTarget(name: "SmeltQuantTests", dependencies: ["SmeltQuant", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltCompressedTensorsTests", dependencies: ["SmeltCompressedTensors", "SmeltQuantize", "SmeltFormats",
                                                                        "SmeltReport", "SmeltTestSupport"]),
        .testTarget(name: "SmeltTokenizerTests", dependencies: ["SmeltTokenizer", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltModelTests", dependencies: ["SmeltModel", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltConvertTests", dependencies: ["SmeltConvert", "SmeltQuantize", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltQuantizeTests", dependencies: ["SmeltQuantize", "SmeltQuant", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltGPUTests", dependencies: ["SmeltGPU", "SmeltQuant", "SmeltQuantize", "SmeltFormats",
                                                          "SmeltTestSupport"]),
        .testTarget(name: "SmeltLicenseTests", dependencies: ["SmeltLicense", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltReportTests", dependencies: ["SmeltReport", "SmeltStore", "SmeltEval", "SmeltFormats",
                                                            "SmeltTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SmeltSweepTests", dependencies: ["SmeltSweep", "SmeltReport", "SmeltStore", "SmeltFormats",
                                                           "SmeltTestSupport"]),
        .testTarget(name: "SmeltCLITests", dependencies: ["SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltCalibrationTests", dependencies: ["SmeltCalibration", "SmeltEval", "SmeltFormats", "SmeltCompressedTensors",
                                                                  "SmeltQuantize",
                                                                  "SmeltTestSupport"]),
        .testTarget(name: "SmeltEvalTests", dependencies: ["SmeltEval", "SmeltFormats", "SmeltQuant", "SmeltTestSupport", "SmeltConvert",
                                                          "CSmeltKernels"],
                    resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
