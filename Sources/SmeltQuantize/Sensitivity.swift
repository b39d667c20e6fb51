import Foundation
import SmeltFormats
import SmeltQuant

/// One measurement: a tensor quantized to a type.
public struct SensitivityEntry: Sendable, Equatable {
    public var tensor: String
    public var type: GGMLType
    /// Bytes of the tensor in `type`.
    public var bytes: Int
    /// Importance-weighted squared error Σ_rows Σ_j w_j (x_j − q(x)_j)², w = imatrix column
    /// weights (1 without an imatrix); estimated from sampled rows, scaled to all rows.
    public var error: Double
    /// Σ_rows Σ_j w_j x_j² over the same rows (so error/signal is the relative error).
    public var signal: Double
    /// Mean KL-divergence of the model with only this tensor's group quantized to `type`
    /// (measured with the evaluator; nil when not measured).
    public var kld: Double? = nil
    public var relativeError: Double { signal > 0 ? error / signal : 0 }
}

/// Per-tensor, per-type sensitivities, cached on disk keyed by model, imatrix, tensor and type.
public struct SensitivityTable: Sendable {
    public var entries: [String: [GGMLType: SensitivityEntry]] = [:]
    /// KLD of tensor groups: group name → type → (tensors, mean KLD).
    public var groupKLD: [String: [GGMLType: Double]] = [:]
    public init() {}

    public subscript(tensor: String, type: GGMLType) -> SensitivityEntry? {
        get { entries[tensor]?[type] }
        set { entries[tensor, default: [:]][type] = newValue }
    }

    /// The cache file as JSON.
    public func json() -> JSONValue {
        var rows: [JSONValue] = []
        for name in entries.keys.sorted() {
            for (t, e) in entries[name]!.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                var o: [(String, JSONValue)] = [("tensor", .string(name)), ("type", .string(t.name)),
                                                ("bytes", .int(Int64(e.bytes))), ("error", .double(e.error)),
                                                ("signal", .double(e.signal))]
                if let k = e.kld { o.append(("kld", .double(k))) }
                rows.append(.object(o))
            }
        }
        var groups: [JSONValue] = []
        for g in groupKLD.keys.sorted() {
            for (t, k) in groupKLD[g]!.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                groups.append(.object([("group", .string(g)), ("type", .string(t.name)), ("kld", .double(k))]))
            }
        }
        return .object([("version", .int(1)), ("entries", .array(rows)), ("groups", .array(groups))])
    }

    public init(json: JSONValue) {
        for r in json["entries"]?.arrayValue ?? [] {
            guard let n = r["tensor"]?.stringValue, let tn = r["type"]?.stringValue, let t = GGMLType(name: tn),
                  let b = r["bytes"]?.intValue, let e = r["error"]?.doubleValue, let s = r["signal"]?.doubleValue else { continue }
            self[n, t] = SensitivityEntry(tensor: n, type: t, bytes: Int(b), error: e, signal: s, kld: r["kld"]?.doubleValue)
        }
        for r in json["groups"]?.arrayValue ?? [] {
            guard let g = r["group"]?.stringValue, let tn = r["type"]?.stringValue, let t = GGMLType(name: tn),
                  let k = r["kld"]?.doubleValue else { continue }
            groupKLD[g, default: [:]][t] = k
        }
    }
}

/// Measures sensitivities (quantization error; the KLD part runs in the CLI with the evaluator).
public enum Sensitivity {
    /// The default candidate types of budget mode and `smelt sensitivity`.
    public static let defaultCandidates: [GGMLType] = [.q3_K, .iq4_nl, .q4_0, .q4_1, .iq4_xs, .q4_K, .q5_0, .q5_1, .q5_K,
                                                       .q6_K, .q8_0]

    /// The candidates a tensor can take: its row is a whole number of blocks, Smelt has
    /// the kernel, and importance data exists when the kernel needs it.
    public static func fits(_ t: GGMLType, ncols: Int, hasImportance: Bool) -> Bool {
        guard ncols % t.blockSize == 0 else { return false }
        if t == .f16 || t == .bf16 || t == .f32 { return true }
        guard let k = QuantRegistry.kernel(for: t) else { return false }
        return hasImportance || !(k.requiresImportance || Recipe.defaultRequiresImatrix.contains(t))
    }

    /// A key for the model: FNV-1a over the tensor table and sampled data bytes (for a
    /// checkpoint folder, whose tensors are converted on the fly, the first row as float32).
    public static func modelKey(_ source: TensorSource) -> String {
        var h: UInt64 = 0xcbf29ce484222325
        func mix<S: Sequence>(_ s: S) where S.Element == UInt8 { for b in s { h = (h ^ UInt64(b)) &* 0x100000001b3 } }
        for (i, t) in source.tensors.enumerated() {
            mix(t.name.utf8); mix("\(t.shape)\(t.type.rawValue)".utf8)
            if let d = source.rawData(i), d.count > 0 {
                let step = max(1, d.count / 64)
                var k = 0
                while k < d.count { mix(CollectionOfOne(d[k])); k += step }
            } else if t.rowCount > 0, t.rowLength > 0 {
                var row = [Float](repeating: 0, count: t.rowLength)
                if (try? row.withUnsafeMutableBufferPointer { try source.readRows(i, rows: 0..<1, into: $0.baseAddress!) }) != nil {
                    row.withUnsafeBytes { b in
                        let step = max(1, b.count / 64)
                        var k = 0
                        while k < b.count { mix(CollectionOfOne(b[k])); k += step }
                    }
                }
            }
        }
        return String(format: "%016llx", h)
    }

    /// FNV-1a of a file's bytes (imatrix, evaluation text).
    public static func fileKey(_ url: URL?) -> String {
        guard let url, let d = try? Data(contentsOf: url) else { return "none" }
        var h: UInt64 = 0xcbf29ce484222325
        for b in d { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return String(format: "%016llx", h)
    }

    /// Measures the weighted error of every (tensor, type) pair not already in `table`.
    /// `tensors`: indices into `source.tensors`; at most `maxRows` rows per tensor are used.
    /// With an `accelerator` (the GPU), the pairs whose type it supports are quantized there by
    /// one worker while the others take the rest on the CPU; the quantized bytes, and so every
    /// number in the table, are the same as without it.
    public static func measureErrors(source: TensorSource, tensors: [Int], types: [GGMLType],
                                     importance: [String: [Float]], table: inout SensitivityTable,
                                     maxRows: Int = 256, threads: Int = 0, accelerator: (any QuantAccelerator)? = nil,
                                     progress: ((Int, Int) -> Void)? = nil) throws {
        var cpuJobs: [(Int, GGMLType)] = [], gpuJobs: [(Int, GGMLType)] = []
        for i in tensors {
            let t = source.tensors[i]
            let imp = importance[t.name]
            for ty in types where fits(ty, ncols: t.rowLength, hasImportance: imp != nil) && table[t.name, ty] == nil {
                if let acc = accelerator, acc.supports(ty) { gpuJobs.append((i, ty)) } else { cpuJobs.append((i, ty)) }
            }
        }
        let total = cpuJobs.count + gpuJobs.count
        guard total > 0 else { return }
        let lock = NSLock()
        var next = 0, nextGPU = 0, done = 0
        var results: [SensitivityEntry] = []
        var failure: Error? = nil
        let workers = max(gpuJobs.isEmpty ? 1 : 2, min(threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount, total))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while true {
                lock.lock()
                // worker 0 feeds the accelerator (used from one thread at a time), then helps the CPU
                let onGPU = worker == 0 && nextGPU < gpuJobs.count
                let j: Int
                if onGPU { j = nextGPU; nextGPU += 1 } else { j = next; next += 1 }
                let stop = failure != nil
                lock.unlock()
                if stop || (!onGPU && j >= cpuJobs.count) { return }
                let (i, ty) = onGPU ? gpuJobs[j] : cpuJobs[j]
                do {
                    let e = try measure(source: source, index: i, type: ty, importance: importance[source.tensors[i].name], maxRows: maxRows,
                                        accelerator: onGPU ? accelerator : nil)
                    lock.lock(); results.append(e); done += 1; let d = done; lock.unlock()
                    progress?(d, total)
                } catch {
                    lock.lock(); failure = failure ?? error; lock.unlock()
                }
            }
        }
        if let failure { throw failure }
        for e in results { table[e.tensor, e.type] = e }
    }

    /// Quantizes sampled rows of one tensor to `type` and back; returns the weighted error.
    /// `accelerator`: quantizes the sampled rows (all in one call) on that device instead.
    public static func measure(source: TensorSource, index: Int, type: GGMLType, importance: [Float]?,
                               maxRows: Int, accelerator: (any QuantAccelerator)? = nil) throws -> SensitivityEntry {
        let t = source.tensors[index]
        let n = t.rowLength, rows = t.rowCount
        let ne1 = t.shape.count > 1 ? t.shape[1] : 1
        let ne2 = t.shape.count > 2 ? t.shape[2] : 1
        let step = max(1, rows / max(1, maxRows))
        let x = UnsafeMutablePointer<Float>.allocate(capacity: n); defer { x.deallocate() }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: n); defer { y.deallocate() }
        let q = UnsafeMutableRawPointer.allocate(byteCount: max(1, type.rowBytes(n) ?? n * 4), alignment: 64)
        defer { q.deallocate() }
        let kernel = QuantRegistry.kernel(for: type)
        var err = 0.0, sig = 0.0, sampled = 0
        // On the accelerator: every sampled row at once, each with its own importance slice.
        let sampledRows = Array(stride(from: 0, to: rows, by: step))
        var deviceBytes: UnsafeMutableRawPointer? = nil
        defer { deviceBytes?.deallocate() }
        if let acc = accelerator, kernel != nil, acc.supports(type), let rb = type.rowBytes(n) {
            let out = UnsafeMutableRawPointer.allocate(byteCount: max(1, rb * sampledRows.count), alignment: 64)
            deviceBytes = out
            let weights: [Float]? = importance.map { imp in
                sampledRows.flatMap { r in imp[(((r / ne1) % ne2) * n)..<(((r / ne1) % ne2) * n + n)] }
            }
            try weights.withUnsafeBufferPointerOpt { w in
                try acc.quantize(type: type, rows: sampledRows.count, n: n, importance: w?.baseAddress, ne1: 1,
                                 ne2: w == nil ? 1 : sampledRows.count, dst: out) { range, buffer in
                    for (k, i) in range.enumerated() {
                        try source.readRows(index, rows: sampledRows[i]..<(sampledRows[i] + 1), into: buffer + k * n)
                    }
                }
            }
        }
        for (k, r) in sampledRows.enumerated() {
            try source.readRows(index, rows: r..<(r + 1), into: x)
            let wOff = importance == nil ? 0 : ((r / ne1) % ne2) * n
            if let kernel, let dev = deviceBytes, let rb = type.rowBytes(n) {
                kernel.dequantizeRow(dev + k * rb, y, count: n)
            } else if let kernel {
                if let imp = importance {
                    imp.withUnsafeBufferPointer { kernel.quantizeRow(x, q, count: n, importance: $0.baseAddress! + wOff) }
                } else {
                    kernel.quantizeRow(x, q, count: n, importance: nil)
                }
                kernel.dequantizeRow(q, y, count: n)
            } else if type == .f16 {
                for j in 0..<n { y[j] = Float(Float16(x[j])) }
            } else {
                for j in 0..<n { y[j] = x[j] }
            }
            var e = 0.0, s = 0.0
            if let imp = importance {
                for j in 0..<n { let d = Double(x[j] - y[j]); let w = Double(imp[wOff + j]); e += w * d * d; s += w * Double(x[j]) * Double(x[j]) }
            } else {
                for j in 0..<n { let d = Double(x[j] - y[j]); e += d * d; s += Double(x[j]) * Double(x[j]) }
            }
            err += e; sig += s; sampled += 1
        }
        let scale = Double(rows) / Double(max(1, sampled))
        return SensitivityEntry(tensor: t.name, type: type, bytes: GGUF.byteCount(shape: t.shape, type: type) ?? 0,
                                error: err * scale, signal: sig * scale)
    }

    /// The cache file for a model and imatrix under `folder`.
    public static func cacheURL(folder: URL, modelKey: String, imatrixKey: String) -> URL {
        folder.appendingPathComponent("\(modelKey)-\(imatrixKey).json")
    }

    public static func loadCache(_ url: URL) -> SensitivityTable {
        guard let v = try? JSONValue.parse(contentsOf: url) else { return SensitivityTable() }
        return SensitivityTable(json: v)
    }

    public static func saveCache(_ table: SensitivityTable, _ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true) } catch {
            throw SmeltError("cannot create the cache folder \(url.deletingLastPathComponent().path): \(error.localizedDescription)")
        }
        let out = try OutputFile(url: url)  // temporary file + rename, removed on interruption
        try out.write(Array(table.json().serialized(pretty: false).utf8))
        try out.commit()
    }

    /// The default cache folder: `$SMELT_CACHE/sensitivity` or `~/.cache/smelt/sensitivity`.
    public static var defaultCacheFolder: URL {
        if let c = ProcessInfo.processInfo.environment["SMELT_CACHE"] { return URL(fileURLWithPath: c).appendingPathComponent("sensitivity") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/smelt/sensitivity")
    }
}
