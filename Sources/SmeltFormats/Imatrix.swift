import Foundation

/// An importance matrix as llama.cpp's `llama-imatrix` writes it (tools/imatrix
/// and common/imatrix-loader.cpp at 34af94cd9), in either format:
/// - GGUF (`general.type = imatrix`): per entry `NAME.in_sum2` (F32, `[ncols, nmat]`,
///   raw sums of squared activations) and `NAME.counts` (F32, `[1, nmat]`, rows seen
///   per matrix/expert); keys `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size`.
/// - legacy `.dat`: `n_entries`, then per entry name, `ncall`, `nval` and
///   `nval` floats holding `(sum/count)*ncall`; then optionally the chunk count and
///   the dataset name.
public struct Imatrix: Equatable, Sendable {
    /// One tensor's statistics. GGUF form: raw `sums` (`nmat * ncols`) and one count
    /// per matrix. Legacy form: `sums` are already `(sum/count)*ncall`, `counts == [ncall]`.
    public struct Entry: Equatable, Sendable {
        public var sums: [Float]
        public var counts: [Int64]
        public init(sums: [Float], counts: [Int64]) { self.sums = sums; self.counts = counts }
    }

    public var entries: [String: Entry]
    public var datasets: [String]
    /// Chunks the statistics were computed on (`imatrix.chunk_count`, legacy trailer).
    public var chunkCount: Int
    /// Tokens per chunk (`imatrix.chunk_size`; 0 in legacy files).
    public var chunkSize: Int
    /// Read from a legacy `.dat` file (entries hold normalised sums).
    public var isLegacy: Bool
    /// The GGUF file had all three `imatrix.*` keys (llama-quantize refuses a GGUF imatrix without them).
    public var hasMetadata: Bool

    /// Raw statistics (GGUF form), e.g. collected by an imatrix run.
    public init(entries: [String: Entry], datasets: [String], chunkCount: Int, chunkSize: Int) {
        self.entries = entries; self.datasets = datasets
        self.chunkCount = chunkCount; self.chunkSize = chunkSize
        isLegacy = false; hasMetadata = true
    }

    /// Reads either format (GGUF when the file starts with the GGUF magic).
    public init(url: URL) throws {
        let map = try MappedFile(url: url)
        if map.count >= 4, map.bytes.loadUnaligned(as: UInt32.self) == GGUF.magic {
            try self.init(gguf: GGUFFile(url: url))
        } else {
            try self.init(legacy: map.bytes, path: url.path)
        }
    }

    init(gguf f: GGUFFile) throws {
        let path = f.url.path
        guard !f.tensors.isEmpty else { throw SmeltError("\(path): imatrix has no data") }
        let md = f.metadata
        var ds: [String] = []
        if case let .array(.string, a)? = md["imatrix.datasets"] { ds = a.compactMap(\.stringValue) }
        datasets = ds
        hasMetadata = md["imatrix.datasets"] != nil && md["imatrix.chunk_count"] != nil && md["imatrix.chunk_size"] != nil
        chunkCount = md["imatrix.chunk_count"]?.intValue ?? 0
        chunkSize = md["imatrix.chunk_size"]?.intValue ?? 0
        isLegacy = false
        var sums: [String: GGUFTensorInfo] = [:], counts: [String: GGUFTensorInfo] = [:]
        for t in f.tensors where !t.name.isEmpty {
            if t.name.hasSuffix(".in_sum2") { sums[String(t.name.dropLast(8))] = t }
            else if t.name.hasSuffix(".counts") { counts[String(t.name.dropLast(7))] = t }
        }
        var out: [String: Entry] = [:]
        for name in Set(sums.keys).union(counts.keys) {
            guard let s = sums[name], let c = counts[name] else {
                throw SmeltError("\(path): mismatched sums and counts for \(name)")
            }
            guard s.type == .f32, c.type == .f32 else { throw SmeltError("\(path): sums and counts for \(name) must be F32") }
            let sv = Array(f.data(for: s).bindMemory(to: Float.self))
            let rawCounts = Array(f.data(for: c).bindMemory(to: Float.self))
            if let k = rawCounts.firstIndex(where: { !$0.isFinite || $0 < 0 || $0 > 9e15 }) {
                throw SmeltError("\(path): \(name).counts[\(k)] = \(rawCounts[k]) is not a count")
            }
            if let k = sv.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                throw SmeltError("\(path): \(name) sum of squares [\(k)] = \(sv[k]) (must be finite and non-negative)")
            }
            let cv = rawCounts.map { Int64($0.rounded(.toNearestOrAwayFromZero)) }
            guard !cv.isEmpty, sv.count % cv.count == 0 else {
                throw SmeltError("\(path): \(name) has \(sv.count) sums for \(cv.count) counts")
            }
            out[name] = Entry(sums: sv, counts: cv)
        }
        entries = out
    }

    init(legacy b: UnsafeRawBufferPointer, path: String) throws {
        var r = ByteReader(b, what: path)
        let n = try r.read(Int32.self, "entry count")
        guard n >= 1 else { throw SmeltError("\(path): no data in imatrix file") }
        var out: [String: Entry] = [:]
        for i in 0..<Int(n) {
            let len = try r.read(Int32.self, "name length of entry \(i + 1)")
            guard len >= 0 else { throw r.fail("negative name length") }
            try r.need(Int(len), "name of entry \(i + 1)")
            let raw = UnsafeRawBufferPointer(rebasing: b[r.pos..<(r.pos + Int(len))])
            // llama.cpp keeps the name up to the first NUL
            let name = String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            r.pos += Int(len)
            let ncall = try r.read(Int32.self, "ncall of \(name)")
            let nval = try r.read(Int32.self, "value count of \(name)")
            guard nval >= 1 else { throw r.fail("entry \(name) has \(nval) values") }
            try r.need(Int(nval) * 4, "values of \(name)")
            var v = [Float](repeating: 0, count: Int(nval))
            v.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[r.pos..<(r.pos + Int(nval) * 4)])) }
            r.pos += Int(nval) * 4
            guard ncall >= 0 else { throw r.fail("entry \(name) has ncall \(ncall)") }
            if let k = v.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                throw r.fail("entry \(name) value [\(k)] = \(v[k]) (must be finite and non-negative)")
            }
            out[name] = Entry(sums: v, counts: [Int64(ncall)])
        }
        var chunks = 0
        var ds: [String] = []
        if r.remaining > 0 {
            if r.remaining >= 4 {
                chunks = Int(try r.read(Int32.self, "chunk count"))
                if r.remaining >= 4 {
                    let len = Int(try r.read(Int32.self, "dataset length"))
                    if len > 0, len <= r.remaining {
                        let raw = UnsafeRawBufferPointer(rebasing: b[r.pos..<(r.pos + len)])
                        ds.append(String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self))
                    }
                }
            }
        }
        entries = out; datasets = ds; chunkCount = chunks; chunkSize = 0
        isLegacy = true; hasMetadata = false
    }

    /// The per-column importance weights llama-quantize derives (tools/quantize
    /// `load_imatrix`): GGUF sums divided by the matrix's count (1 where the count is 0);
    /// legacy sums divided by `ncall` (unchanged when `ncall` is 0). Float arithmetic as C++.
    public func importanceWeights() -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, e) in entries {
            var w = [Float](repeating: 0, count: e.sums.count)
            if !isLegacy {
                let nc = e.counts.count
                let ne0 = nc > 0 ? e.sums.count / nc : 0
                for j in 0..<nc {
                    let c = Float(e.counts[j])
                    for i in 0..<ne0 { w[j * ne0 + i] = c > 0 ? e.sums[j * ne0 + i] / c : 1 }
                }
            } else {
                let ncall = e.counts.first ?? 0
                let c = Float(ncall)
                for i in 0..<e.sums.count { w[i] = ncall > 0 ? e.sums[i] / c : e.sums[i] }
            }
            out[name] = w
        }
        return out
    }

    /// Raw (GGUF-form) statistics: legacy entries are turned back into sums and counts
    /// as llama-imatrix does when it loads a `.dat` file (× `chunkSize`).
    public func rawEntries(chunkSize cs: Int) -> [String: Entry] {
        guard isLegacy else { return entries }
        var out: [String: Entry] = [:]
        for (n, e) in entries {
            out[n] = Entry(sums: e.sums.map { 0 + $0 * Float(cs) }, counts: [(e.counts.first ?? 0) * Int64(cs)])
        }
        return out
    }

    /// Writes the GGUF format exactly as `llama-imatrix` does (entries sorted by name;
    /// every entry with data, including partial ones).
    public func writeGGUF(to url: URL) throws {
        let raw = rawEntries(chunkSize: chunkSize)
        var md = GGUFMetadata()
        md["general.type"] = .string("imatrix")
        md["imatrix.datasets"] = .strings(datasets)
        md["imatrix.chunk_count"] = .uint32(UInt32(truncatingIfNeeded: chunkCount))
        md["imatrix.chunk_size"] = .uint32(UInt32(truncatingIfNeeded: chunkSize))
        let names = raw.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var descs: [GGUFTensorDescriptor] = []
        var blobs: [[Float]] = []
        for n in names {
            let e = raw[n]!
            let nmat = e.counts.count
            guard !e.sums.isEmpty, nmat > 0 else { continue }
            // ggml writes ggml_n_dims dimensions: trailing 1s dropped ([256, 1] is written as [256]).
            func dims(_ s: [Int]) -> [Int] { var d = s; while d.count > 1, d.last == 1 { d.removeLast() }; return d }
            descs.append(GGUFTensorDescriptor(name: n + ".in_sum2", shape: dims([e.sums.count / nmat, nmat]), type: .f32))
            descs.append(GGUFTensorDescriptor(name: n + ".counts", shape: dims([1, nmat]), type: .f32))
            blobs.append(e.sums)
            blobs.append(e.counts.map { Float($0) })
        }
        let w = try GGUFWriter(url: url, metadata: md, tensors: descs)
        do {
            for b in blobs { try b.withUnsafeBytes { try w.write($0) } }
            try w.finish()
        } catch { w.abort(); throw error }
    }

    /// Writes the legacy `.dat` format exactly as `llama-imatrix --output-format dat`
    /// does: entries without any data are skipped, `ncall` is the largest count in
    /// chunks (rounded up), values are `(sum/count)*ncall` (1 for matrices without data).
    /// `dataset` is the trailer's file name (llama-imatrix: the prompt file, else the last dataset).
    public func writeLegacy(to url: URL, dataset: String? = nil) throws {
        let cs = max(chunkSize, 1)
        let raw = rawEntries(chunkSize: chunkSize)
        let names = raw.keys.filter { n in
            let c = raw[n]!.counts
            return !c.isEmpty && c.contains { $0 != 0 }
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var b = ByteWriter()
        b.int(Int32(names.count))
        for n in names {
            let e = raw[n]!
            let u = Array(n.utf8)
            b.int(Int32(u.count)); b.bytes.append(contentsOf: u)
            let ncall = Int32(truncatingIfNeeded: (e.counts.max()! + Int64(cs - 1)) / Int64(cs))
            b.int(ncall)
            let nval = e.sums.count, nmat = e.counts.count
            b.int(Int32(nval))
            if nval > 0 && nmat > 0 {
                for i in 0..<nval {
                    var count = Float(e.counts[i / (nval / nmat)])
                    var value = e.sums[i]
                    if count == 0 { value = 1; count = 1 }
                    b.int(((value / count) * Float(ncall)).bitPattern)
                }
            }
        }
        b.int(Int32(truncatingIfNeeded: chunkCount))
        let d = Array((dataset ?? datasets.last ?? "").utf8)
        b.int(Int32(d.count)); b.bytes.append(contentsOf: d)
        let out = try OutputFile(url: url)
        try out.write(b.bytes)
        try out.commit()
    }
}

extension Imatrix {
    /// Several importance matrices combined as llama-imatrix `--in-file A --in-file B …`
    /// does: raw sums and counts added entry by entry (legacy files first turned back into
    /// raw statistics with `chunkSize` tokens per chunk), datasets listed in order, chunk
    /// counts added. Entries whose sizes differ between files are an error.
    public static func combined(_ parts: [(Imatrix, String)], chunkSize: Int) throws -> Imatrix {
        var entries: [String: Entry] = [:]
        var datasets: [String] = [], chunks = 0, size = 0
        for (im, path) in parts {
            let cs = im.chunkSize > 0 ? im.chunkSize : chunkSize
            for (n, e) in im.rawEntries(chunkSize: cs) {
                guard var cur = entries[n] else { entries[n] = e; continue }
                guard cur.sums.count == e.sums.count, cur.counts.count == e.counts.count else {
                    throw SmeltError("\(path): entry \(n) has \(e.sums.count) values for \(e.counts.count) matrices, the files before have \(cur.sums.count) for \(cur.counts.count)")
                }
                for i in cur.sums.indices { cur.sums[i] += e.sums[i] }
                for i in cur.counts.indices { cur.counts[i] += e.counts[i] }
                entries[n] = cur
            }
            datasets += im.datasets
            chunks += im.chunkCount
            if size == 0 { size = cs }
        }
        return Imatrix(entries: entries, datasets: datasets, chunkCount: chunks, chunkSize: size > 0 ? size : chunkSize)
    }
}

/// One row of llama-imatrix's `--show-statistics` table (legacy mode: statistics of the
/// per-column mean squared activations `E[x²] = sum / count`).
public struct ImatrixTensorStatistics: Sendable, Equatable {
    public var name: String
    /// The block number as text (`-` outside blocks) and the short tensor name (`attn_q`).
    public var layer: String, tensor: String
    public var sum: Float, min: Float, max: Float, mean: Float, std: Float
    /// Columns with data (matrices with a zero count are skipped).
    public var elements: Int
    /// Shannon entropy (bits) of the columns' share of Σ E[x²].
    public var entropy: Float
    /// Fraction of columns more than one standard deviation from the mean.
    public var zd: Float
    /// Cosine similarity with the same tensor of the previous block (0 when there is none).
    public var cossim: Float
}

extension Imatrix {
    /// llama-imatrix `--show-statistics` (tools/imatrix `compute_vector_statistics`,
    /// `compute_tensor_statistics`), sorted as it prints them: by short tensor name, then by
    /// Σ E[x²] descending.
    public func statistics() -> [ImatrixTensorStatistics] {
        let raw = rawEntries(chunkSize: max(chunkSize, 1))
        func split(_ name: String) -> (String, String) {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var layer = "", tensor = ""
            if let i = parts.firstIndex(of: "blk"), i + 1 < parts.count { layer = parts[i + 1] }
            if let i = parts.firstIndex(of: "weight"), i > 0 { tensor = parts[i - 1] }
            return (layer.isEmpty ? "-" : layer, tensor.isEmpty ? name : tensor)
        }
        func averages(_ e: Entry) -> [Float] {
            let nmat = e.counts.count
            guard nmat > 0, !e.sums.isEmpty, e.sums.count % nmat == 0 else { return [] }
            let row = e.sums.count / nmat
            var v: [Float] = []
            for m in 0..<nmat {
                let c = Float(e.counts[m])
                for j in 0..<row { v.append(c <= 0 ? 0 : e.sums[m * row + j] / c) }
            }
            return v
        }
        var out: [ImatrixTensorStatistics] = []
        for (name, e) in raw {
            let nmat = e.counts.count
            guard nmat > 0, !e.sums.isEmpty, e.sums.count % nmat == 0 else { continue }
            let row = e.sums.count / nmat
            var mean = 0.0, m2 = 0.0, sum = 0.0, energy = 0.0
            var vmin = Float.infinity, vmax = -Float.infinity
            var n = 0
            var values: [Double] = []
            for m in 0..<nmat where e.counts[m] > 0 {
                for j in 0..<row {
                    let v = Double(e.sums[m * row + j]) / Double(Float(e.counts[m]))
                    values.append(v)
                    n += 1; sum += v
                    vmin = Swift.min(vmin, Float(v)); vmax = Swift.max(vmax, Float(v))
                    let d = v - mean
                    mean += d / Double(n)
                    m2 += d * (v - mean)
                    energy += Swift.max(0, v)
                }
            }
            guard n > 0 else { continue }
            let variance = Swift.max(n > 1 ? m2 / Double(n - 1) : 0, 0)
            let std = Float(variance).squareRoot()
            var entropy: Float = 0
            if energy > 0 {
                for v in values {
                    let p = Swift.max(0, v) / energy
                    if p > 0 { entropy -= Float(p * log2(p)) }
                }
            }
            var zd = 0.0
            if std > 0 { for v in values where abs((Float(v) - Float(mean)) / std) > 1 { zd += 1 } }
            let (layer, tensor) = split(name)
            out.append(ImatrixTensorStatistics(name: name, layer: layer, tensor: tensor, sum: Float(sum), min: vmin, max: vmax,
                                               mean: Float(mean), std: std, elements: n, entropy: entropy,
                                               zd: Float(zd / Double(n)), cossim: 0))
        }
        // cosine similarity with the previous block's same tensor
        for i in out.indices {
            guard let r = out[i].name.range(of: #"blk\.[0-9]+\."#, options: .regularExpression),
                  let blk = Int(out[i].name[r].dropFirst(4).dropLast()), blk > 0 else { continue }
            let prev = out[i].name.replacingCharacters(in: r, with: "blk.\(blk - 1).")
            guard let pe = raw[prev], let ce = raw[out[i].name] else { continue }
            let a = averages(ce), b = averages(pe)
            guard !a.isEmpty, a.count == b.count else { continue }
            var dot: Float = 0, n1: Float = 0, n2: Float = 0
            for k in a.indices { dot += a[k] * b[k]; n1 += a[k] * a[k]; n2 += b[k] * b[k] }
            var cs: Float = 0
            if n1 > 0 && n2 > 0 { cs = Swift.min(1, Swift.max(-1, dot / (n1.squareRoot() * n2.squareRoot()))) } else if n1 == 0 && n2 == 0 { cs = 1 }
            out[i].cossim = cs
        }
        return out.sorted { $0.tensor != $1.tensor ? $0.tensor < $1.tensor : ($0.sum != $1.sum ? $0.sum > $1.sum : $0.name < $1.name) }
    }

    /// The `--show-statistics` tables as llama-imatrix prints them (tensor table, then per layer
    /// Σ E[x²], ZD and the mean of the tensors' cosine similarities).
    public func statisticsText(file: String) -> String {
        let ts = statistics()
        var out = "\nComputing tensor statistics for \(file) (\(ts.count) tensors)\n\n"
        // (Foundation's %@ ignores widths: strings are padded here, as printf's %6s / %-20s)
        out += zip(["Layer", "Tensor", "Σ E[Act²]", "Min", "Max", "μ", "σ", "N", "H Norm", "H", "ZD", "CosSim"],
                   [6, 18, 13, 8, 8, 7, 15, 13, 11, 8, 5, 10]).map { lpad($0, $1) }.joined(separator: "\t") + "\n"
        out += String(repeating: "=", count: 171) + "\n"
        var layers: [Int: (sum: Float, zd: Float, n: Int, cs: Float, k: Int)] = [:]
        for t in ts {
            let hNorm: Float = t.elements > 1 ? 100 * (t.entropy / log2(Float(t.elements))) : 0
            out += lpad(t.layer, 5) + "\t" + rpad(t.tensor, 20) + "\t"
                + String(format: "%11.4f\t%10.4f\t%10.4f\t%8.4f\t%8.4f\t%7d\t%10.2f%%\t%10.4f\t%6.2f%%\t%10.4f\n",
                         t.sum, t.min, t.max, t.mean, t.std, t.elements, hNorm, t.entropy, 100 * t.zd, t.cossim)
            let blk = Int(t.layer) ?? -1
            var l = layers[blk] ?? (0, 0, 0, 0, 0)
            l.sum += t.sum; l.zd += Float(t.elements) * t.zd; l.n += t.elements; l.cs += t.cossim; l.k += 1
            layers[blk] = l
        }
        let blocks = layers.keys.filter { $0 >= 0 }.sorted()
        out += "\nComputing layer statistics (\(blocks.count) layers)\n\n"
        out += zip(["Layer", "Σ E[Act²]", "ZD", "CosSim"], [6, 13, 6, 11]).map { lpad($0, $1) }.joined(separator: "\t") + "\n"
        out += String(repeating: "=", count: 44) + "\n"
        for b in blocks {
            guard let l = layers[b], l.n > 0 else { continue }
            out += String(format: "%5d\t%11.4f\t%6.2f%%\t%11.4f\n", b, l.sum, 100 * l.zd / Float(l.n), l.k > 0 ? l.cs / Float(l.k) : 0)
        }
        return out
    }
}
