// swift-tools-version:6.1
// Smelt: a quantization toolchain for large language models.
// Module layout (dependencies point one way, see docs/ARCHITECTURE.md):
//   C shims (CZstd, COpenBLAS, CVulkan) and CSmeltKernels (Smelt's own AVX-512 BF16 / F16C loops)
//   SmeltFormats   GGUF, safetensors, JSON, ggml type table, float formats
//   SmeltQuant     per-block quantization kernels (one type per ggml block type)
//   SmeltTokenizer BPE / SentencePiece tokenizers
//   SmeltModel     architecture tables, HF config, model cards
//   SmeltConvert / SmeltQuantize / SmeltEval   pipelines
//   SmeltLicense   license knowledge base and lineage resolution
//   smelt          the command line (argument parsing only)
import PackageDescription

let swiftSettings: [SwiftSetting] = [
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
    ],
    targets: [
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan", pkgConfig: "vulkan",
                       providers: [.apt(["libvulkan-dev"])]),

        // Smelt's own native inner loops (AVX-512 BF16, F16C) with run-time CPU checks
        .target(name: "CSmeltKernels", path: "Sources/CSmeltKernels",
                cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))]),

        .target(name: "SmeltFormats", swiftSettings: swiftSettings),
        .target(name: "SmeltQuant", dependencies: ["SmeltFormats"], swiftSettings: swiftSettings),
        .target(name: "SmeltTokenizer", dependencies: ["SmeltFormats"], swiftSettings: swiftSettings),
        .target(name: "SmeltModel", dependencies: ["SmeltFormats", "SmeltTokenizer",
                                                   .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        .target(name: "SmeltConvert", dependencies: ["SmeltFormats", "SmeltQuant", "SmeltTokenizer", "SmeltModel"],
                swiftSettings: swiftSettings),
        .target(name: "SmeltQuantize", dependencies: ["SmeltFormats", "SmeltQuant", "SmeltModel", "SmeltConvert",
                                                      .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        .target(name: "SmeltEval", dependencies: ["SmeltFormats", "SmeltQuant", "SmeltTokenizer", "SmeltModel",
                                                  "COpenBLAS", "CZstd", "CSmeltKernels"],
                swiftSettings: swiftSettings),
        .target(name: "SmeltLicense", dependencies: ["SmeltFormats", .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        .executableTarget(name: "smelt", dependencies: [
            "SmeltFormats", "SmeltQuant", "SmeltTokenizer", "SmeltModel", "SmeltConvert", "SmeltQuantize",
            "SmeltEval", "SmeltLicense",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: swiftSettings),

        .target(name: "SmeltTestSupport", dependencies: ["SmeltFormats"], path: "Tests/SmeltTestSupport"),
        .testTarget(name: "SmeltFormatsTests", dependencies: ["SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltQuantTests", dependencies: ["SmeltQuant", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltTokenizerTests", dependencies: ["SmeltTokenizer", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltModelTests", dependencies: ["SmeltModel", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltConvertTests", dependencies: ["SmeltConvert", "SmeltQuantize", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltQuantizeTests", dependencies: ["SmeltQuantize", "SmeltQuant", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltLicenseTests", dependencies: ["SmeltLicense", "SmeltFormats", "SmeltTestSupport"]),
        .testTarget(name: "SmeltEvalTests", dependencies: ["SmeltEval", "SmeltFormats", "SmeltQuant", "SmeltTestSupport", "SmeltConvert",
                                                          "CSmeltKernels"]),
    ],
    swiftLanguageModes: [.v5]
)
