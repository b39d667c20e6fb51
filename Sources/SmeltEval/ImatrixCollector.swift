import Foundation
import SmeltFormats

/// Collects llama-imatrix's statistics: for every matrix product of the
/// transformer blocks (and `output.weight` when asked), the sum over tokens
/// of the squared input activations per input column, and the token count.
/// Products of fewer than 16 tokens are ignored, as in llama.cpp.
public final class ImatrixCollector: ActivationObserver {
    public let processOutput: Bool
    private var sums: [String: [Float]] = [:]
    private var counts: [String: Int64] = [:]
    /// Expert tensors (MUL_MAT_ID): `n_expert × cols` sums and one count per expert.
    private var expertSums: [String: [Float]] = [:]
    private var expertCounts: [String: [Int64]] = [:]
    private let lock = NSLock()
    let threads: Int

    public init(processOutput: Bool = false, threads: Int = 1) {
        self.processOutput = processOutput
        self.threads = threads
    }

    public func observe(weight: String, input: UnsafePointer<Float>, rows: Int, cols: Int) {
        guard rows >= 16, weight.hasPrefix("blk.") || (processOutput && weight == "output.weight") else { return }
        lock.lock(); defer { lock.unlock() }
        var acc = sums[weight] ?? [Float](repeating: 0, count: cols)
        precondition(acc.count == cols, "imatrix: inconsistent size for \(weight)")
        acc.withUnsafeMutableBufferPointer { ap in
            let a = ap.baseAddress!
            // columns split over workers; each column sums rows in order (as ggml's float loop)
            Parallel.ranges(cols, threads: cols * rows > 1 << 16 ? threads : 1) { _, r in
                for t in 0..<rows {
                    let x = input + t * cols
                    for j in r { a[j] += x[j] * x[j] }
                }
            }
        }
        if acc.contains(where: { !$0.isFinite }) {
            FileHandle.standardError.write(Data("imatrix: non-finite values detected in \(weight)\n".utf8))
        }
        sums[weight] = acc
        counts[weight, default: 0] += Int64(rows)
    }

    /// llama-imatrix's MUL_MAT_ID branch: every token routed to an expert adds its squared
    /// input to that expert's sums and 1 to its count (no 16-token minimum).
    public func observe(weight: String, expert: Int, of experts: Int, input: UnsafePointer<Float>, rows: Int, cols: Int) {
        guard expert >= 0, expert < experts, rows > 0 else { return }
        lock.lock(); defer { lock.unlock() }
        var acc = expertSums[weight] ?? [Float](repeating: 0, count: cols * experts)
        var cnt = expertCounts[weight] ?? [Int64](repeating: 0, count: experts)
        guard acc.count == cols * experts, cnt.count == experts else { return }
        acc.withUnsafeMutableBufferPointer { ap in
            let a = ap.baseAddress! + expert * cols
            for t in 0..<rows {
                let x = input + t * cols
                for j in 0..<cols { a[j] += x[j] * x[j] }
            }
        }
        cnt[expert] += Int64(rows)
        expertSums[weight] = acc
        expertCounts[weight] = cnt
    }

    /// The statistics in llama.cpp's GGUF form.
    public func imatrix(datasets: [String], chunkSize: Int) -> Imatrix {
        lock.lock(); defer { lock.unlock() }
        var entries: [String: Imatrix.Entry] = [:]
        var lastChunk = 0
        for (k, v) in sums {
            let c = counts[k] ?? 0
            entries[k] = Imatrix.Entry(sums: v, counts: [c])
            lastChunk = max(lastChunk, Int(c) / max(chunkSize, 1))
        }
        for (k, v) in expertSums {
            entries[k] = Imatrix.Entry(sums: v, counts: expertCounts[k] ?? [])
        }
        return Imatrix(entries: entries, datasets: datasets, chunkCount: lastChunk, chunkSize: chunkSize)
    }
}

/// The result of `smelt imatrix`.
public struct ImatrixResult: Codable, Sendable, Equatable {
    public var model: String
    public var contextLength: Int
    public var chunks: Int
    public var entries: Int
    /// The perplexity llama-imatrix prints along the way (all tokens' logits are computed anyway).
    public var perplexity: Double
    public var uncertainty: Double
    public var seconds: Double
    public var tokensPerSecond: Double
}

extension Evaluator {
    /// Runs the model over `tokens` in chunks of `n_ctx` (llama-imatrix's method)
    /// and returns the collected importance matrix.
    public static func imatrix(model: InferenceModel, tokens: [Int32], options: EvaluationOptions = EvaluationOptions(),
                               dataset: String, processOutput: Bool = false, addBOS: Bool? = nil,
                               reporter: EvaluationReporter = EvaluationReporter()) throws -> (Imatrix, ImatrixResult) {
        let n = options.contextLength
        let (chunks, nSeq) = try plan(tokenCount: tokens.count, options: options)
        let collector = ImatrixCollector(processOutput: processOutput, threads: model.threads)
        let first = n / 2
        let V = model.logitCount
        let scored = KLDBaseFile.scoredPerChunk(context: n)
        var nllSum = 0.0, nll2Sum = 0.0, count = 0
        let threads = model.threads
        let seconds = try runChunks(model: model, tokens: tokens, context: n, chunks: chunks, sequencesPerBatch: nSeq,
                                    bos: bos(model, addBOS: addBOS), firstOutput: 0, observer: collector,
                                    reporter: reporter) { chunk, logits in
            let base = chunk * n + first
            var values = [Double](repeating: 0, count: scored)
            values.withUnsafeMutableBufferPointer { vp in
                Parallel.forEach(scored, threads: threads) { _, i in
                    vp[i] = nll(logits.baseAddress! + (first + i) * V, count: V, token: Int(tokens[base + i + 1]))
                }
            }
            for v in values { nllSum += v; nll2Sum += v * v }
            count += scored
            reporter.line(String(format: "[%d]%.4f,", chunk + 1, exp(nllSum / Double(count))))
        }
        let mean = nllSum / Double(count)
        var v = nll2Sum / Double(count) - mean * mean
        v = v > 0 ? (v / Double(count - 1)).squareRoot() : 0
        reporter.line("\n")
        reporter.line(String(format: "Final estimate: PPL = %.4f +/- %.5f\n", exp(mean), v * exp(mean)))
        let im = collector.imatrix(datasets: [dataset], chunkSize: n)
        return (im, ImatrixResult(model: model.source.lastPathComponent, contextLength: n, chunks: chunks,
                                  entries: im.entries.count, perplexity: exp(mean), uncertainty: v * exp(mean),
                                  seconds: seconds, tokensPerSecond: Double(chunks * n) / max(seconds, 1e-9)))
    }
}
