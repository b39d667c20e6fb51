import Foundation
import SmeltFormats

/// A value with llama.cpp's `±` uncertainty.
public struct Estimate: Codable, Sendable, Equatable {
    public var value: Double
    public var uncertainty: Double
    public init(_ value: Double, _ uncertainty: Double) { self.value = value; self.uncertainty = uncertainty }
}

/// The distribution summary llama-perplexity prints for KLD and Δp.
public struct Distribution: Codable, Sendable, Equatable {
    public var maximum: Double
    public var p99_9: Double
    public var p99: Double
    public var p95: Double
    public var p90: Double
    /// Only printed for Δp.
    public var p75: Double
    public var median: Double
    /// Only printed for Δp.
    public var p25: Double
    public var p10: Double
    public var p5: Double
    public var p1: Double
    public var p0_1: Double
    public var minimum: Double

    init(sorted v: [Float]) {
        func pct(_ f: Float) -> Double {
            if f <= 0 { return Double(v.first!) }
            if f >= 1 { return Double(v.last!) }
            var p = f * Float(v.count - 1)
            let ip = Int(p); p -= Float(ip)
            return Double((1 - p) * v[ip] + p * v[min(ip + 1, v.count - 1)])
        }
        let med = v.count % 2 == 0 ? 0.5 * (v[v.count / 2] + v[v.count / 2 - 1]) : v[v.count / 2]
        maximum = Double(v.last!); p99_9 = pct(0.999); p99 = pct(0.990); p95 = pct(0.950); p90 = pct(0.900)
        p75 = pct(0.750); median = Double(med); p25 = pct(0.250); p10 = pct(0.100); p5 = pct(0.050)
        p1 = pct(0.010); p0_1 = pct(0.001); minimum = Double(v.first!)
    }
}

/// One line of llama-perplexity's per-chunk KL-divergence table (running values).
public struct KLDChunkLine: Codable, Sendable, Equatable {
    public var chunk: Int
    public var ppl: Estimate
    public var lnPPLRatio: Estimate
    public var kld: Estimate
    /// RMS Δp (fraction, not percent).
    public var rmsDeltaP: Estimate
    /// Same-top-token rate (fraction).
    public var sameTop: Estimate

    public init(chunk: Int, ppl: Estimate, lnPPLRatio: Estimate, kld: Estimate, rmsDeltaP: Estimate, sameTop: Estimate) {
        self.chunk = chunk; self.ppl = ppl; self.lnPPLRatio = lnPPLRatio; self.kld = kld
        self.rmsDeltaP = rmsDeltaP; self.sameTop = sameTop
    }
}

/// Everything `llama-perplexity --kl-divergence` prints, as values.
public struct KLDivergenceResult: Codable, Sendable, Equatable {
    public var model: String
    public var base: String
    public var contextLength: Int
    public var chunks: Int
    public var scoredTokens: Int
    public var pplQ: Estimate
    public var pplBase: Estimate
    /// Cor(ln PPL(Q), ln PPL(base)) (fraction).
    public var correlation: Double
    public var lnPPLRatio: Estimate
    public var pplRatio: Estimate
    public var pplDifference: Estimate
    public var kld: Estimate
    /// nil when fewer than 100 tokens were scored (llama.cpp prints no statistics then).
    public var kldDistribution: Distribution?
    /// Mean Δp = p(Q) − p(base) of the correct token (fraction).
    public var deltaP: Estimate
    public var deltaPDistribution: Distribution?
    public var rmsDeltaP: Estimate
    public var sameTop: Estimate
    public var perChunk: [KLDChunkLine]
    public var seconds: Double
    public var tokensPerSecond: Double

    public init(model: String, base: String, contextLength: Int, chunks: Int, scoredTokens: Int, pplQ: Estimate,
                pplBase: Estimate, correlation: Double, lnPPLRatio: Estimate, pplRatio: Estimate, pplDifference: Estimate,
                kld: Estimate, kldDistribution: Distribution?, deltaP: Estimate, deltaPDistribution: Distribution?,
                rmsDeltaP: Estimate, sameTop: Estimate, perChunk: [KLDChunkLine], seconds: Double, tokensPerSecond: Double) {
        self.model = model; self.base = base; self.contextLength = contextLength; self.chunks = chunks
        self.scoredTokens = scoredTokens; self.pplQ = pplQ; self.pplBase = pplBase; self.correlation = correlation
        self.lnPPLRatio = lnPPLRatio; self.pplRatio = pplRatio; self.pplDifference = pplDifference; self.kld = kld
        self.kldDistribution = kldDistribution; self.deltaP = deltaP; self.deltaPDistribution = deltaPDistribution
        self.rmsDeltaP = rmsDeltaP; self.sameTop = sameTop; self.perChunk = perChunk; self.seconds = seconds
        self.tokensPerSecond = tokensPerSecond
    }
}

/// llama.cpp's `kl_divergence_result` accumulator.
struct KLDAccumulator {
    var sumNLL = 0.0, sumNLL2 = 0.0, sumNLLBase = 0.0, sumNLLBase2 = 0.0, sumNLLNLLBase = 0.0
    var sumKLD = 0.0, sumKLD2 = 0.0, sumPDiff = 0.0, sumPDiff2 = 0.0, sumPDiff4 = 0.0
    var maxPDiff: Float = 0
    var sameTop = 0, count = 0

    mutating func merge(_ o: KLDAccumulator) {
        sumNLL += o.sumNLL; sumNLL2 += o.sumNLL2; sumNLLBase += o.sumNLLBase; sumNLLBase2 += o.sumNLLBase2
        sumNLLNLLBase += o.sumNLLNLLBase; sumKLD += o.sumKLD; sumKLD2 += o.sumKLD2; sumPDiff += o.sumPDiff
        sumPDiff2 += o.sumPDiff2; sumPDiff4 += o.sumPDiff4; maxPDiff = max(maxPDiff, o.maxPDiff)
        sameTop += o.sameTop; count += o.count
    }

    /// One token (llama.cpp's `log_softmax(n_vocab, logits, base_log_prob, tok, kld)`); returns (KLD, Δp).
    mutating func add(logits: UnsafePointer<Float>, count n: Int, base: UnsafePointer<UInt16>, token: Int) -> (Double, Float) {
        var maxLogit = logits[0]
        var imax = 0
        for i in 1..<n where logits[i] > maxLogit { maxLogit = logits[i]; imax = i }
        var sumExp: Double = 0
        for i in 0..<n { sumExp += Double(expf(logits[i] - maxLogit)) }
        let logSumExp = Float(log(sumExp))
        let raw = UnsafeRawPointer(base)
        let scale = raw.loadUnaligned(as: Float.self)
        let minLogProb = raw.loadUnaligned(fromByteOffset: 4, as: Float.self)
        let q = base + 4

        let nll: Float = maxLogit + logSumExp - logits[token]
        sumNLL += Double(nll); sumNLL2 += Double(nll * nll)
        let nllBase: Float = -(scale * Float(q[token]) + minLogProb)
        sumNLLBase += Double(nllBase); sumNLLBase2 += Double(nllBase * nllBase)
        sumNLLNLLBase += Double(nll * nllBase)

        maxLogit += logSumExp
        var sum = 0.0
        var imaxBase = -1
        var pLogBaseMax: Float = 0
        for i in 0..<n {
            let pLogBase = scale * Float(q[i]) + minLogProb
            if i == 0 || pLogBase > pLogBaseMax { pLogBaseMax = pLogBase; imaxBase = i }
            if pLogBase > -16 {
                let pBase = expf(pLogBase)
                sum += Double(pBase * (pLogBase - logits[i] + maxLogit))
            }
        }
        sumKLD += sum; sumKLD2 += sum * sum
        count += 1
        if imax == imaxBase { sameTop += 1 }
        let pBase = expf(-nllBase)
        let p = expf(-nll)
        let pDiff = p - pBase
        sumPDiff += Double(pDiff)
        let pDiff2 = Double(pDiff * pDiff)
        sumPDiff2 += pDiff2
        sumPDiff4 += pDiff2 * pDiff2
        maxPDiff = max(maxPDiff, abs(pDiff))
        return (sum, pDiff)
    }

    static func meanAndUncertainty(_ sum: Double, _ sum2: Double, _ count: Int) -> Estimate {
        if count < 1 { return Estimate(0, 0) }
        let f = sum / Double(count)
        var df = sum2 / Double(count) - f * f
        df = df > 0 && count > 10 ? (df / Double(count - 1)).squareRoot() : 0
        return Estimate(f, df)
    }

    static func covariance(_ a: Double, _ b: Double, _ ab: Double, _ count: Int) -> Double {
        if count < 10 { return 0 }
        return (ab / Double(count) - (a / Double(count)) * (b / Double(count))) / Double(count - 1)
    }

    var logPPL: Estimate { Self.meanAndUncertainty(sumNLL, sumNLL2, count) }
    var logPPLBase: Estimate { Self.meanAndUncertainty(sumNLLBase, sumNLLBase2, count) }
    var logCov: Double { Self.covariance(sumNLL, sumNLLBase, sumNLLNLLBase, count) }
    var lnRatio: Estimate {
        let a = logPPL, b = logPPLBase
        return Estimate(a.value - b.value, (a.uncertainty * a.uncertainty + b.uncertainty * b.uncertainty - 2 * logCov).squareRoot())
    }
    var rmsDeltaP: Estimate {
        let mse = Self.meanAndUncertainty(sumPDiff2, sumPDiff4, count)
        let rms = mse.value.squareRoot()
        return Estimate(rms, 0.5 / rms * mse.uncertainty)
    }
    var sameTopEstimate: Estimate {
        let p = Double(sameTop) / Double(count)
        return Estimate(p, (p * (1 - p) / Double(count - 1)).squareRoot())
    }
}

extension Evaluator {
    /// KL-divergence of `model` against a base file written by `smelt perplexity --save-logits`
    /// or `llama-perplexity --kl-divergence-base` (tokens and context come from the file).
    public static func klDivergence(model: InferenceModel, base url: URL, options: EvaluationOptions = EvaluationOptions(),
                                    addBOS: Bool? = nil,
                                    reporter: EvaluationReporter = EvaluationReporter()) throws -> KLDivergenceResult {
        let reader = try KLDBaseReader(url: url)
        let n = reader.context, V = reader.vocabulary
        guard V == model.logitCount else {
            throw SmeltError("\(url.path): inconsistent vocabulary: the base file has \(V) tokens, the model \(model.logitCount)")
        }
        let chunks = options.chunks.map { min($0, reader.chunks) } ?? reader.chunks
        let nSeq = max(1, options.batchSize / n)
        let first = n / 2
        let scored = KLDBaseFile.scoredPerChunk(context: n)
        let stride = KLDBaseFile.rowStride(vocabulary: V)
        let tokens = reader.tokens
        var baseRows = [UInt16](repeating: 0, count: scored * stride)
        var kldValues: [Float] = [], pDiffValues: [Float] = []
        kldValues.reserveCapacity(scored * chunks); pDiffValues.reserveCapacity(scored * chunks)
        var acc = KLDAccumulator()
        var lines: [KLDChunkLine] = []
        let threads = model.threads
        reporter.line("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n")
        let seconds = try runChunks(model: model, tokens: tokens, context: n, chunks: chunks, sequencesPerBatch: nSeq,
                                    bos: bos(model, addBOS: addBOS), firstOutput: first, reporter: reporter) { chunk, logits in
            try baseRows.withUnsafeMutableBufferPointer { try reader.readChunk(into: $0, index: chunk) }
            let base = chunk * n + first
            var k = [Float](repeating: 0, count: scored), d = [Float](repeating: 0, count: scored)
            let parts = max(1, min(threads, scored))
            var partial = [KLDAccumulator](repeating: KLDAccumulator(), count: parts)
            baseRows.withUnsafeBufferPointer { bp in
                k.withUnsafeMutableBufferPointer { kp in
                    d.withUnsafeMutableBufferPointer { dp in
                        partial.withUnsafeMutableBufferPointer { pp in
                            Parallel.ranges(scored, threads: parts) { w, r in
                                var a = KLDAccumulator()
                                for i in r {
                                    let (kv, dv) = a.add(logits: logits.baseAddress! + i * V, count: V,
                                                         base: bp.baseAddress! + i * stride, token: Int(tokens[base + i + 1]))
                                    kp[i] = Float(kv); dp[i] = dv
                                }
                                pp[w] = a
                            }
                        }
                    }
                }
            }
            for p in partial { acc.merge(p) }
            kldValues += k; pDiffValues += d
            let logPPL = acc.logPPL
            let ppl = exp(logPPL.value)
            let line = KLDChunkLine(chunk: chunk + 1, ppl: Estimate(ppl, ppl * logPPL.uncertainty), lnPPLRatio: acc.lnRatio,
                                    kld: KLDAccumulator.meanAndUncertainty(acc.sumKLD, acc.sumKLD2, acc.count),
                                    rmsDeltaP: acc.rmsDeltaP, sameTop: acc.sameTopEstimate)
            lines.append(line)
            reporter.line(String(format: "%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%\n",
                                 line.chunk, line.ppl.value, line.ppl.uncertainty, line.lnPPLRatio.value, line.lnPPLRatio.uncertainty,
                                 line.kld.value, line.kld.uncertainty, 100 * line.rmsDeltaP.value, 100 * line.rmsDeltaP.uncertainty,
                                 100 * line.sameTop.value, 100 * line.sameTop.uncertainty))
        }
        kldValues.sort(); pDiffValues.sort()
        let logPPL = acc.logPPL, logBase = acc.logPPLBase
        let ppl = exp(logPPL.value), pplBase = exp(logBase.value)
        let pplUnc = ppl * logPPL.uncertainty, baseUnc = pplBase * logBase.uncertainty
        let cov = acc.logCov
        let ratio = acc.lnRatio
        let pplCov = ppl * pplBase * cov
        let result = KLDivergenceResult(
            model: model.source.lastPathComponent, base: url.lastPathComponent, contextLength: n, chunks: chunks,
            scoredTokens: acc.count,
            pplQ: Estimate(ppl, pplUnc), pplBase: Estimate(pplBase, baseUnc),
            correlation: cov / (logPPL.uncertainty * logBase.uncertainty),
            lnPPLRatio: ratio, pplRatio: Estimate(exp(ratio.value), exp(ratio.value) * ratio.uncertainty),
            pplDifference: Estimate(ppl - pplBase, (pplUnc * pplUnc + baseUnc * baseUnc - 2 * pplCov).squareRoot()),
            kld: KLDAccumulator.meanAndUncertainty(acc.sumKLD, acc.sumKLD2, acc.count),
            kldDistribution: acc.count >= 100 ? Distribution(sorted: kldValues) : nil,
            deltaP: KLDAccumulator.meanAndUncertainty(acc.sumPDiff, acc.sumPDiff2, acc.count),
            deltaPDistribution: acc.count >= 100 ? Distribution(sorted: pDiffValues) : nil,
            rmsDeltaP: acc.rmsDeltaP, sameTop: acc.sameTopEstimate, perChunk: lines,
            seconds: seconds, tokensPerSecond: Double(chunks * n) / max(seconds, 1e-9))
        reporter.line("\n" + result.report())
        return result
    }
}

extension KLDivergenceResult {
    /// The statistics block exactly as llama-perplexity prints it.
    public func report() -> String {
        guard let k = kldDistribution, let d = deltaPDistribution else { return "" }
        var s = "====== Perplexity statistics ======\n"
        s += String(format: "Mean PPL(Q)                   : %10.6f ± %10.6f\n", pplQ.value, pplQ.uncertainty)
        s += String(format: "Mean PPL(base)                : %10.6f ± %10.6f\n", pplBase.value, pplBase.uncertainty)
        s += String(format: "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * correlation)
        s += String(format: "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", lnPPLRatio.value, lnPPLRatio.uncertainty)
        s += String(format: "Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", pplRatio.value, pplRatio.uncertainty)
        s += String(format: "Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", pplDifference.value, pplDifference.uncertainty)
        s += "\n====== KL divergence statistics ======\n"
        s += String(format: "Mean    KLD: %10.6f ± %10.6f\n", kld.value, kld.uncertainty)
        s += String(format: "Maximum KLD: %10.6f\n", k.maximum)
        s += String(format: "99.9%%   KLD: %10.6f\n", k.p99_9)
        s += String(format: "99.0%%   KLD: %10.6f\n", k.p99)
        s += String(format: "95.0%%   KLD: %10.6f\n", k.p95)
        s += String(format: "90.0%%   KLD: %10.6f\n", k.p90)
        s += String(format: "Median  KLD: %10.6f\n", k.median)
        s += String(format: "10.0%%   KLD: %10.6f\n", k.p10)
        s += String(format: " 5.0%%   KLD: %10.6f\n", k.p5)
        s += String(format: " 1.0%%   KLD: %10.6f\n", k.p1)
        s += String(format: " 0.1%%   KLD: %10.6f\n", k.p0_1)
        s += String(format: "Minimum KLD: %10.6f\n", k.minimum)
        s += "\n====== Token probability statistics ======\n"
        s += String(format: "Mean    Δp: %6.3f ± %5.3f %%\n", 100 * deltaP.value, 100 * deltaP.uncertainty)
        s += String(format: "Maximum Δp: %6.3f%%\n", 100 * d.maximum)
        s += String(format: "99.9%%   Δp: %6.3f%%\n", 100 * d.p99_9)
        s += String(format: "99.0%%   Δp: %6.3f%%\n", 100 * d.p99)
        s += String(format: "95.0%%   Δp: %6.3f%%\n", 100 * d.p95)
        s += String(format: "90.0%%   Δp: %6.3f%%\n", 100 * d.p90)
        s += String(format: "75.0%%   Δp: %6.3f%%\n", 100 * d.p75)
        s += String(format: "Median  Δp: %6.3f%%\n", 100 * d.median)
        s += String(format: "25.0%%   Δp: %6.3f%%\n", 100 * d.p25)
        s += String(format: "10.0%%   Δp: %6.3f%%\n", 100 * d.p10)
        s += String(format: " 5.0%%   Δp: %6.3f%%\n", 100 * d.p5)
        s += String(format: " 1.0%%   Δp: %6.3f%%\n", 100 * d.p1)
        s += String(format: " 0.1%%   Δp: %6.3f%%\n", 100 * d.p0_1)
        s += String(format: "Minimum Δp: %6.3f%%\n", 100 * d.minimum)
        s += String(format: "RMS Δp    : %6.3f ± %5.3f %%\n", 100 * rmsDeltaP.value, 100 * rmsDeltaP.uncertainty)
        s += String(format: "Same top p: %6.3f ± %5.3f %%\n", 100 * sameTop.value, 100 * sameTop.uncertainty)
        return s
    }
}
