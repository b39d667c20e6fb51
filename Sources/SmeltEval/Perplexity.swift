import Foundation
import SmeltFormats

/// Settings shared by perplexity, KL-divergence and imatrix runs (llama.cpp's `-c`, `-b`, `--chunks`).
public struct EvaluationOptions: Sendable {
    /// Tokens per chunk (`-c`).
    public var contextLength = 512
    /// Tokens per forward pass (`-b`): `max(1, b / c)` chunks are evaluated together.
    public var batchSize = 2048
    /// At most this many chunks (`--chunks`); nil = all.
    public var chunks: Int?
    public init(contextLength: Int = 512, batchSize: Int = 2048, chunks: Int? = nil) {
        self.contextLength = contextLength
        self.batchSize = batchSize
        self.chunks = chunks
    }
}

/// Where a run reports to: `line` receives llama.cpp-style stdout text,
/// `progress` (chunks done, chunk total, tokens per second) drives a progress bar.
public struct EvaluationReporter {
    public var line: (String) -> Void
    public var progress: (Int, Int, Double) -> Void
    public init(line: @escaping (String) -> Void = { _ in }, progress: @escaping (Int, Int, Double) -> Void = { _, _, _ in }) {
        self.line = line
        self.progress = progress
    }
}

/// The result of `smelt perplexity` (llama-perplexity's method).
public struct PerplexityResult: Codable, Sendable, Equatable {
    public var model: String
    public var contextLength: Int
    public var chunks: Int
    /// Tokens whose likelihood was scored (`chunks × (n_ctx − 1 − n_ctx/2)`).
    public var scoredTokens: Int
    /// `exp(mean NLL)`.
    public var perplexity: Double
    /// llama.cpp's `+/-` value: `PPL · sqrt(var(NLL)/(N−1))`.
    public var uncertainty: Double
    /// The running estimate after each chunk (`[1]…,[2]…` in llama-perplexity's output).
    public var runningEstimates: [Double]
    /// Wall time of the evaluation (tokenization and loading excluded).
    public var seconds: Double
    /// Tokens processed (`chunks × n_ctx`) per second.
    public var tokensPerSecond: Double
    /// SHA-256 of the KL-divergence base file written with `saveLogits` (computed while writing).
    public var savedLogitsSHA256: String? = nil
}

/// Evaluation runs over chunked token streams, as llama-perplexity does them.
public enum Evaluator {
    /// Evaluates `chunks` chunks of `n` tokens from `tokens` in batches of
    /// `sequencesPerBatch` chunks, first token replaced by `bos` when given,
    /// and hands each chunk's logits (positions `firstOutput..<n`) to `body`.
    static func runChunks(model: InferenceModel, tokens: [Int32], context n: Int, chunks: Int, sequencesPerBatch: Int,
                          bos: Int32?, firstOutput: Int, observer: ActivationObserver? = nil,
                          reporter: EvaluationReporter,
                          body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws -> Double {
        let start = Date()
        var i = 0
        while i < chunks {
            let nSeq = min(sequencesPerBatch, chunks - i)
            var batch = Array(tokens[(i * n)..<((i + nSeq) * n)])
            if let bos { for s in 0..<nSeq { batch[s * n] = bos } }
            let rows = n - firstOutput, V = model.logitCount
            var inBody = false
            do {
                try model.forward(tokens: batch, sequenceLength: n, sequenceCount: nSeq, firstOutput: firstOutput,
                                  observer: observer) { lp in
                    inBody = true
                    for s in 0..<nSeq {
                        try body(i + s, UnsafeBufferPointer(rebasing: lp[(s * rows * V)..<((s + 1) * rows * V)]))
                    }
                }
            } catch let e as SmeltError where !inBody {
                // the forward pass stopped (non-finite activations): say which chunks
                let which = nSeq == 1 ? "chunk \(i + 1)" : "chunks \(i + 1)–\(i + nSeq)"
                throw SmeltError("\(e.message) in \(which)")
            }
            i += nSeq
            let dt = Date().timeIntervalSince(start)
            reporter.progress(i, chunks, Double(i * n) / max(dt, 1e-9))
        }
        return Date().timeIntervalSince(start)
    }

    /// Checks the text is long enough and returns (chunks, sequences per batch).
    static func plan(tokenCount: Int, options o: EvaluationOptions) throws -> (Int, Int) {
        let n = o.contextLength
        guard n >= 4 else { throw SmeltError("context size must be at least 4 (got \(n))") }
        guard n <= Int(KLDBaseFile.maxContext) else { throw SmeltError("context size must be at most \(KLDBaseFile.maxContext) (got \(n))") }
        guard tokenCount / 2 >= n else {
            throw SmeltError("you need at least \(2 * n) tokens to evaluate perplexity with a context of \(n); the text tokenizes to only \(tokenCount) tokens")
        }
        guard o.batchSize > 0 else { throw SmeltError("batch size must be positive") }
        let maxChunks = tokenCount / n
        let chunks = o.chunks.map { max(0, min($0, maxChunks)) } ?? maxChunks
        guard chunks > 0 else { throw SmeltError("no chunks to evaluate") }
        return (chunks, max(1, o.batchSize / n))
    }

    /// The BOS id to put at the start of each chunk, if the model's tokenizer adds one.
    static func bos(_ model: InferenceModel, addBOS: Bool?) -> Int32? {
        let add = addBOS ?? model.config.addBOS
        return add ? model.config.bosToken : nil
    }

    /// llama.cpp's per-token log-softmax (float max, double sum of `expf`); returns the NLL.
    /// (Vectorised: float partial sums of 256 values are added in double.)
    @inline(__always) static func nll(_ logits: UnsafePointer<Float>, count n: Int, token: Int) -> Double {
        let mx = VectorMath.max(logits, 0, n)
        let m = VectorMath.V8(repeating: mx)
        var sum: Double = 0
        var i = 0
        while i + 256 <= n {
            var acc = VectorMath.V8()
            for j in stride(from: i, to: i + 256, by: 8) { acc += VectorMath.exp(VectorMath.load(logits + j) - m) }
            sum += Double(acc.sum())
            i += 256
        }
        while i < n { sum += Double(expf(logits[i] - mx)); i += 1 }
        return -(Double(logits[token] - mx) - log(sum))
    }

    /// Perplexity of `tokens` (already tokenized, BOS included as the tokenizer adds it),
    /// optionally saving llama.cpp's KL-divergence base file.
    public static func perplexity(model: InferenceModel, tokens: [Int32], options: EvaluationOptions = EvaluationOptions(),
                                  addBOS: Bool? = nil, saveLogits: URL? = nil,
                                  reporter: EvaluationReporter = EvaluationReporter()) throws -> PerplexityResult {
        let n = options.contextLength
        let (chunks, nSeq) = try plan(tokenCount: tokens.count, options: options)
        let first = n / 2
        let scored = KLDBaseFile.scoredPerChunk(context: n)
        let V = model.logitCount
        let writer = try saveLogits.map {
            try KLDBaseWriter(url: $0, context: n, vocabulary: V, chunks: chunks, tokens: tokens[0..<(chunks * n)])
        }
        let stride = KLDBaseFile.rowStride(vocabulary: V)
        var rowsBuffer = writer == nil ? [] : [UInt16](repeating: 0, count: scored * stride)
        var nllSum = 0.0, nll2Sum = 0.0, count = 0
        var running: [Double] = []
        let threads = model.threads
        let seconds = try runChunks(model: model, tokens: tokens, context: n, chunks: chunks, sequencesPerBatch: nSeq,
                                    bos: bos(model, addBOS: addBOS), firstOutput: first, reporter: reporter) { chunk, logits in
            let base = chunk * n + first
            var values = [Double](repeating: 0, count: scored)
            try values.withUnsafeMutableBufferPointer { vp in
                let lp = logits.baseAddress!
                if writer != nil {
                    rowsBuffer.withUnsafeMutableBufferPointer { rb in
                        let r = rb.baseAddress!
                        Parallel.forEach(scored, threads: threads) { _, i in
                            vp[i] = KLDBaseFile.quantize(logits: lp + i * V, count: V, token: Int(tokens[base + i + 1]), into: r + i * stride)
                        }
                    }
                    try rowsBuffer.withUnsafeBufferPointer { try writer!.append($0) }
                } else {
                    Parallel.forEach(scored, threads: threads) { _, i in
                        vp[i] = nll(lp + i * V, count: V, token: Int(tokens[base + i + 1]))
                    }
                }
            }
            for v in values { nllSum += v; nll2Sum += v * v }
            count += scored
            let est = exp(nllSum / Double(count))
            running.append(est)
            reporter.line(String(format: "[%d]%.4f,", chunk + 1, est))
        }
        try writer?.commit()
        let mean = nllSum / Double(count)
        let ppl = exp(mean)
        var v = nll2Sum / Double(count) - mean * mean
        v = v > 0 ? (v / Double(count - 1)).squareRoot() : 0
        reporter.line("\n")
        reporter.line(String(format: "Final estimate: PPL = %.4f +/- %.5f\n", ppl, v * ppl))
        return PerplexityResult(model: model.source.lastPathComponent, contextLength: n, chunks: chunks, scoredTokens: count,
                                perplexity: ppl, uncertainty: v * ppl, runningEstimates: running, seconds: seconds,
                                tokensPerSecond: Double(chunks * n) / max(seconds, 1e-9),
                                savedLogitsSHA256: writer?.sha256)
    }
}
