import ArgumentParser
import Foundation
import SmeltFormats

/// `--split-max-size` / `--split-max-tensors`, shared by split, convert and quantize.
struct SplitOptions: ParsableArguments {
    @Option(help: "Split the output: at most this much tensor data per file (2G, 500M, 1000000; K/M/G are powers of 1000).")
    var splitMaxSize: String?
    @Option(help: "Split the output: at most this many tensors per file.")
    var splitMaxTensors: Int?

    /// The limit given, if any.
    func limit() throws -> GGUFSplit.Limit? {
        if splitMaxSize != nil && splitMaxTensors != nil {
            throw SmeltError("give --split-max-size or --split-max-tensors, not both")
        }
        if let n = splitMaxTensors {
            guard n >= 1 else { throw SmeltError("--split-max-tensors must be at least 1, got \(n)") }
            return .tensors(n)
        }
        return try splitMaxSize.map { try GGUFSplit.Limit.size(parsing: $0) }
    }
}

/// `smelt split IN OUT-PREFIX`: llama-gguf-split --split.
struct SplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Split a GGUF model into shards as llama-gguf-split does (OUT-PREFIX-00001-of-0000N.gguf …).",
        discussion: "Without a limit, 128 tensors per shard (llama-gguf-split's default). The first shard holds all metadata; every shard gets split.no, split.tensors.count and split.count.")

    @Argument(help: "The GGUF model (a split model is read whole from its first shard).")
    var input: String
    @Argument(help: "Output prefix: shards are written as PREFIX-00001-of-0000N.gguf.")
    var outputPrefix: String
    @OptionGroup var split: SplitOptions
    @Flag(help: "Print the shard plan and write nothing.")
    var dryRun = false

    func run() throws {
        try reportingErrors {
            if !dryRun { try OutputGuard.check(splitPrefix: outputPrefix, inputs: [URL(fileURLWithPath: input)]) }
            let model = try GGUFFile(url: URL(fileURLWithPath: input))
            let files = try GGUFSplit.splitPlan(model, prefix: outputPrefix, limit: split.limit() ?? .tensors(128))
            print("n_split: \(files.count)")
            for (i, f) in files.enumerated() {
                let bytes = f.tensors.reduce(0) { $0 + ($1.byteCount ?? 0) }
                print(String(format: "split %05d: n_tensors = %d, total_size = %dM  %@", i + 1, f.tensors.count, bytes / 1_000_000,
                             f.url.lastPathComponent))
            }
            if dryRun { return }
            let bar = ProgressBar("split", total: model.tensors.reduce(0) { $0 + $1.byteCount })
            var last = 0
            try GGUFSplit.write(files, from: model) { done, _ in bar.advance(done - last); last = done }
            bar.finish()
            print("wrote \(files.count) shards with a total of \(model.tensors.count) tensors")
        }
    }
}

/// `smelt merge FIRST-SHARD OUT`: llama-gguf-split --merge.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the shards of a split GGUF model into one file as llama-gguf-split --merge does.")

    @Argument(help: "The first shard (NAME-00001-of-0000N.gguf).")
    var firstShard: String
    @Argument(help: "The merged GGUF file to write (must not exist).")
    var output: String

    func run() throws {
        try reportingErrors {
            try OutputGuard.check(output: URL(fileURLWithPath: output), inputs: [URL(fileURLWithPath: firstShard)])
            let model = try GGUFFile(url: URL(fileURLWithPath: firstShard))
            let plan = try GGUFSplit.mergePlan(model, output: URL(fileURLWithPath: output))
            let bar = ProgressBar("merge", total: model.tensors.reduce(0) { $0 + $1.byteCount })
            var last = 0
            try GGUFSplit.write([plan], from: model) { done, _ in bar.advance(done - last); last = done }
            bar.finish()
            print("\(output) merged from \(model.shards.count) shards with \(model.tensors.count) tensors")
        }
    }
}
