import Foundation
import SmeltFormats

/// llama-perplexity's KL-divergence base file (`--kl-divergence-base`):
/// `"_logits_"`, then int32 `n_ctx`, `n_vocab`, `n_chunk`, the
/// `n_chunk × n_ctx` int32 tokens, then for every chunk and every scored
/// token (`n_ctx − 1 − n_ctx/2` per chunk) one row of `nv = 2·⌈n_vocab/2⌉ + 4`
/// uint16: float32 `scale` and `min_log_prob` (the first 4 uint16) and the
/// log-probabilities quantized as `round((logit − min_logit)/scale)`.
/// Smelt writes it plain, or zstd-compressed when the name ends in `.zst`,
/// and reads both (compression is detected from the content).
public enum KLDBaseFile {
    public static let magic = Array("_logits_".utf8)
    /// Largest context a base file may declare.
    public static let maxContext: Int32 = 1 << 20
    /// Most uint16 values one chunk's rows may take (2 GiB), so that a header cannot ask for
    /// an absurd buffer from a small compressed file.
    public static let maxChunkValues = 1 << 30

    /// uint16 values per scored token.
    public static func rowStride(vocabulary n: Int) -> Int { 2 * ((n + 1) / 2) + 4 }

    /// Scored tokens per chunk.
    public static func scoredPerChunk(context n: Int) -> Int { n - 1 - n / 2 }

    /// llama.cpp's `nearest_int` (round half to even through the float trick).
    @inline(__always) static func nearestInt(_ f: Float) -> Int32 {
        let v = f + 12582912.0
        return Int32(bitPattern: v.bitPattern & 0x007f_ffff) - 0x0040_0000
    }

    /// Quantizes one row of logits into `row` (`rowStride` uint16) as
    /// llama-perplexity does, and returns the token's negative log-likelihood.
    static func quantize(logits: UnsafePointer<Float>, count n: Int, token: Int, into row: UnsafeMutablePointer<UInt16>) -> Double {
        var maxLogit = logits[0], minLogit = logits[0]
        for i in 1..<n { maxLogit = max(maxLogit, logits[i]); minLogit = min(minLogit, logits[i]) }
        minLogit = max(minLogit, maxLogit - 16)
        var sumExp: Double = 0
        for i in 0..<n { sumExp += Double(expf(logits[i] - maxLogit)) }
        let logSumExp = Float(log(sumExp))
        let minLogProb = minLogit - maxLogit - logSumExp
        let scale = (maxLogit - minLogit) / 65535
        UnsafeMutableRawPointer(row).storeBytes(of: scale, as: Float.self)
        UnsafeMutableRawPointer(row).storeBytes(of: minLogProb, toByteOffset: 4, as: Float.self)
        let q = row + 4
        if scale != 0 {
            let inv = 1 / scale
            for i in 0..<n {
                q[i] = logits[i] > minLogit ? UInt16(truncatingIfNeeded: nearestInt(inv * (logits[i] - minLogit))) : 0
            }
        } else {
            q.update(repeating: 0, count: n)
        }
        let stride = rowStride(vocabulary: n)
        if stride - 4 > n { q[n] = 0 }  // padding
        return Double(maxLogit + logSumExp - logits[token])
    }
}

/// Writes a KL-divergence base file (plain, or zstd when the name ends in `.zst`).
public final class KLDBaseWriter {
    private let out: OutputFile
    private let zstd: ZstdWriter?
    public let url: URL

    public init(url: URL, context: Int, vocabulary: Int, chunks: Int, tokens: ArraySlice<Int32>) throws {
        self.url = url
        out = try OutputFile(url: url)
        zstd = url.pathExtension == "zst" ? try ZstdWriter(out: out, level: 3, threads: 0) : nil
        try write(KLDBaseFile.magic)
        try write([Int32(context), Int32(vocabulary), Int32(chunks)])
        try write(Array(tokens))
    }

    private func write<T>(_ values: [T]) throws {
        try values.withUnsafeBytes { try writeRaw($0) }
    }

    func writeRaw(_ b: UnsafeRawBufferPointer) throws {
        if let z = zstd { try z.write(b) } else { try out.write(b) }
    }

    /// Appends quantized rows.
    public func append(_ rows: UnsafeBufferPointer<UInt16>) throws {
        try writeRaw(UnsafeRawBufferPointer(rows))
    }

    /// Finishes the stream and moves the file into place.
    public func commit() throws {
        try zstd?.finish()
        try out.commit()
    }

    /// SHA-256 of the file as written (compressed bytes for `.zst`), after `commit()`.
    public var sha256: String? { out.sha256 }
}

/// Reads a KL-divergence base file written by Smelt or llama-perplexity.
public final class KLDBaseReader {
    private let reader: ByteReader
    /// The base file.
    public let url: URL
    public let context: Int
    public let vocabulary: Int
    public let chunks: Int
    /// `chunks × context` tokens.
    public let tokens: [Int32]
    /// True when the file is zstd-compressed.
    public var compressed: Bool { reader.compressed }

    public init(url: URL) throws {
        self.url = url
        let reader = try ByteReader(url: url)
        self.reader = reader
        var magic = [UInt8](repeating: 0, count: 8)
        try magic.withUnsafeMutableBytes { try reader.read(into: $0, what: "the header") }
        guard magic == KLDBaseFile.magic else {
            throw SmeltError("\(url.path) does not look like a file containing log-probabilities (no _logits_ header)")
        }
        var h = [Int32](repeating: 0, count: 3)
        try h.withUnsafeMutableBytes { try reader.read(into: $0, what: "the header") }
        guard h[0] > 1, h[0] <= KLDBaseFile.maxContext, h[1] > 0, h[1] <= 1 << 24, h[2] > 0 else {
            throw SmeltError("\(url.path): implausible header n_ctx=\(h[0]) n_vocab=\(h[1]) n_chunk=\(h[2])")
        }
        context = Int(h[0]); vocabulary = Int(h[1]); chunks = Int(h[2])
        // sizes against the file before allocating: a plain file must hold what the header announces;
        // a compressed one is read in blocks (memory grows only with data actually present)
        let (tokenCount, o1) = context.multipliedReportingOverflow(by: chunks)
        let (rowValues, o2) = KLDBaseFile.scoredPerChunk(context: context).multipliedReportingOverflow(by: KLDBaseFile.rowStride(vocabulary: vocabulary))
        let (allRows, o3) = rowValues.multipliedReportingOverflow(by: 2 * chunks)
        guard !o1, !o2, !o3, tokenCount <= 1 << 34, rowValues <= KLDBaseFile.maxChunkValues else {
            throw SmeltError("\(url.path): header n_ctx=\(h[0]) n_vocab=\(h[1]) n_chunk=\(h[2]) asks for more than this reader allows")
        }
        if !reader.compressed {
            let size = ((try? FileManager.default.attributesOfItem(atPath: url.path)[.size]) as? NSNumber)?.intValue ?? 0
            let (need, o) = (20 + 4 * tokenCount).addingReportingOverflow(allRows)
            guard !o, size >= need else {
                throw SmeltError("\(url.path): truncated: the header (n_ctx=\(h[0]) n_vocab=\(h[1]) n_chunk=\(h[2])) needs \(o ? "too many" : String(need)) bytes, the file has \(size)")
            }
        }
        var t: [Int32] = []
        var left = tokenCount
        while left > 0 {
            let n = Swift.min(left, 1 << 20)
            var block = [Int32](repeating: 0, count: n)
            try block.withUnsafeMutableBytes { try reader.read(into: $0, what: "the evaluation tokens") }
            t += block
            left -= n
        }
        let nVocab = Int(h[1]), nCtx = Int(h[0])
        if let bad = t.firstIndex(where: { $0 < 0 || Int($0) >= nVocab }) {
            throw SmeltError("\(url.path): evaluation token \(bad) (chunk \(bad / nCtx + 1)) is \(t[bad]), outside the vocabulary of \(nVocab)")
        }
        tokens = t
    }

    /// Reads the rows of the next chunk (`scoredPerChunk × rowStride` uint16).
    /// Each row's scale and minimum log-probability must be finite (a NaN row would turn every
    /// statistic into NaN): the error names the chunk and the row.
    public func readChunk(into buffer: UnsafeMutableBufferPointer<UInt16>, index: Int) throws {
        try reader.read(into: UnsafeMutableRawBufferPointer(buffer), what: "the log-probabilities of chunk \(index + 1)")
        let stride = KLDBaseFile.rowStride(vocabulary: vocabulary)
        guard let p = buffer.baseAddress else { return }
        for row in 0..<(buffer.count / stride) {
            let raw = UnsafeRawPointer(p + row * stride)
            let scale = raw.loadUnaligned(as: Float.self), minLogProb = raw.loadUnaligned(fromByteOffset: 4, as: Float.self)
            guard scale.isFinite, scale >= 0, minLogProb.isFinite else {
                throw SmeltError("\(url.path): chunk \(index + 1), scored token \(row): scale \(scale) / min log-probability \(minLogProb) are not finite")
            }
        }
    }
}
