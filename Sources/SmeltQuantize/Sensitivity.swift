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

/// Mean KL-divergences of tensor groups, all measured under one set of conditions (model
/// content, imatrix, evaluation text or base logits, context, chunks: `Sensitivity.kldKey`).
public struct KLDMeasurements: Sendable, Equatable {
    /// The content key of the model they were measured on (`Sensitivity.contentKey`).
    public var model: String
    /// The conditions, for people: `text wiki.test.raw, -c 512, 4 chunks`.
    public var conditions: String
    /// Group name → type → mean KLD of the model with only that group quantized to that type.
    public var groups: [String: [GGMLType: Double]] = [:]
    public init(model: String, conditions: String, groups: [String: [GGMLType: Double]] = [:]) {
        self.model = model; self.conditions = conditions; self.groups = groups
    }
}

/// Per-tensor, per-type sensitivities: one cache file per `key` (`Sensitivity.errorKey`, which
/// covers everything a weighted-error measurement reads), entries by tensor and type; KLD
/// measurements by their own key (`Sensitivity.kldKey`).
public struct SensitivityTable: Sendable {
    /// The cache format; a file of another version is ignored (measured again).
    public static let version: Int64 = 2
    /// The error key this table belongs to ("" for a table not tied to a cache).
    public var key: String
    public var entries: [String: [GGMLType: SensitivityEntry]] = [:]
    /// KLD measurements by KLD key.
    public var kld: [String: KLDMeasurements] = [:]
    public init(key: String = "") { self.key = key }

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
        var sets: [JSONValue] = []
        for k in kld.keys.sorted() {
            let m = kld[k]!
            var groups: [JSONValue] = []
            for g in m.groups.keys.sorted() {
                for (t, v) in m.groups[g]!.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                    groups.append(.object([("group", .string(g)), ("type", .string(t.name)), ("kld", .double(v))]))
                }
            }
            sets.append(.object([("key", .string(k)), ("model", .string(m.model)), ("conditions", .string(m.conditions)),
                                 ("groups", .array(groups))]))
        }
        return .object([("version", .int(Self.version)), ("key", .string(key)), ("entries", .array(rows)), ("kld", .array(sets))])
    }

    /// Reads a cache file's JSON; a file of another version or key gives an empty table with `key`.
    public init(json: JSONValue, key: String) {
        self.key = key
        guard json["version"]?.intValue == Int(Self.version), json["key"]?.stringValue == key else { return }
        for r in json["entries"]?.arrayValue ?? [] {
            guard let n = r["tensor"]?.stringValue, let tn = r["type"]?.stringValue, let t = GGMLType(name: tn),
                  let b = r["bytes"]?.intValue, let e = r["error"]?.doubleValue, let s = r["signal"]?.doubleValue else { continue }
            self[n, t] = SensitivityEntry(tensor: n, type: t, bytes: Int(b), error: e, signal: s, kld: r["kld"]?.doubleValue)
        }
        for set in json["kld"]?.arrayValue ?? [] {
            guard let k = set["key"]?.stringValue, let m = set["model"]?.stringValue else { continue }
            var ms = KLDMeasurements(model: m, conditions: set["conditions"]?.stringValue ?? "")
            for r in set["groups"]?.arrayValue ?? [] {
                guard let g = r["group"]?.stringValue, let tn = r["type"]?.stringValue, let t = GGMLType(name: tn),
                      let v = r["kld"]?.doubleValue else { continue }
                ms.groups[g, default: [:]][t] = v
            }
            kld[k] = ms
        }
    }

    /// The KLD measurements made on the model with content key `model`.
    public func kldSets(model: String) -> [(key: String, measurements: KLDMeasurements)] {
        kld.filter { $0.value.model == model && !$0.value.groups.isEmpty }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
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

    /// Rows sampled per tensor by default.
    public static let defaultMaxRows = 256

    /// The rows of a tensor with `rows` rows that a measurement reads: at most `maxRows`, evenly spaced.
    public static func sampledRows(_ rows: Int, maxRows: Int) -> StrideTo<Int> {
        stride(from: 0, to: rows, by: max(1, rows / max(1, maxRows)))
    }

    /// The key of a weighted-error cache: SHA-256 of everything a measurement reads or depends
    /// on — the cache format, Smelt's version (its kernels), `maxRows`, every tensor's name, shape
    /// and stored type and the exact float32 values of the rows that are sampled (for a
    /// checkpoint folder, as converted with its outtype), and the importance weights used (after
    /// `--include-weights` / `--exclude-weights`). Any change to one of them is another key.
    public static func errorKey(source: TensorSource, importance: [String: [Float]], maxRows: Int = defaultMaxRows) throws -> String {
        var h = SHA256Hasher()
        h.update(Array("smelt sensitivity errors v\(SensitivityTable.version) \(SmeltVersion.string) rows \(maxRows)\n".utf8))
        var row: [Float] = []
        for (i, t) in source.tensors.enumerated() {
            h.update(Array("tensor \(t.name) \(t.shape) \(t.type.rawValue)\n".utf8))
            guard t.rowLength > 0 else { continue }
            if row.count < t.rowLength { row = [Float](repeating: 0, count: t.rowLength) }
            for r in sampledRows(t.rowCount, maxRows: maxRows) {
                try row.withUnsafeMutableBufferPointer { b in
                    try source.readRows(i, rows: r..<(r + 1), into: b.baseAddress!)
                    h.update(UnsafeRawBufferPointer(start: b.baseAddress!, count: t.rowLength * 4))
                }
            }
            source.release(i)
        }
        for name in importance.keys.sorted() {
            let w = importance[name]!
            h.update(Array("importance \(name) \(w.count)\n".utf8))
            w.withUnsafeBytes { h.update($0) }
        }
        return h.finalize()
    }

    /// The content key of a model: SHA-256 of its files (every shard of a split GGUF; every file
    /// of a checkpoint folder, by relative name) and of its tensor table (the types a checkpoint
    /// is converted to).
    public static func contentKey(_ source: TensorSource) throws -> String {
        var h = SHA256Hasher()
        var files: [(String, URL)] = []
        if let g = source as? GGUFTensorSource {
            files = g.file.shards.map { ($0.url.lastPathComponent, $0.url) }
        } else if let c = source as? HFCheckpointSource {
            let base = c.folder.standardizedFileURL.path
            let e = FileManager.default.enumerator(at: c.folder, includingPropertiesForKeys: [.isRegularFileKey])
            while let u = e?.nextObject() as? URL {
                guard (try? u.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
                files.append((String(u.standardizedFileURL.path.dropFirst(base.count)), u))
            }
            files.sort { $0.0 < $1.0 }
        }
        for (name, u) in files { h.update(Array("file \(name) \(try SHA256Hasher.hashFile(u))\n".utf8)) }
        for t in source.tensors { h.update(Array("tensor \(t.name) \(t.shape) \(t.type.rawValue)\n".utf8)) }
        return h.finalize()
    }

    /// The key of a set of KLD measurements: SHA-256 of the error key, the model's content key,
    /// the imatrix file the probes are quantized with, the evaluation (text file or base-logits
    /// file, by content) and the evaluation settings.
    public static func kldKey(errorKey: String, contentKey: String, imatrix: URL?, evaluation: String,
                              context: Int, chunks: Int, batch: Int) throws -> String {
        var h = SHA256Hasher()
        h.update(Array("smelt sensitivity kld v\(SensitivityTable.version)\n\(errorKey)\n\(contentKey)\n".utf8))
        h.update(Array("imatrix \(try imatrix.map { try SHA256Hasher.hashFile($0) } ?? "none")\n\(evaluation)\n".utf8))
        h.update(Array("context \(context) chunks \(chunks) batch \(batch)\n".utf8))
        return h.finalize()
    }

    /// SHA-256 of a file's bytes (an evaluation text, a base-logits file).
    public static func fileKey(_ url: URL) throws -> String { try SHA256Hasher.hashFile(url) }

    /// Measures the weighted error of every (tensor, type) pair not already in `table`.
    /// `tensors`: indices into `source.tensors`; at most `maxRows` rows per tensor are used.
    /// With an `accelerator` (the GPU), the pairs whose type it supports are quantized there by
    /// one worker while the others take the rest on the CPU; the quantized bytes, and so every
    /// number in the table, are the same as without it.
    public static func measureErrors(source: TensorSource, tensors: [Int], types: [GGMLType],
                                     importance: [String: [Float]], table: inout SensitivityTable,
                                     maxRows: Int = defaultMaxRows, threads: Int = 0, accelerator: (any QuantAccelerator)? = nil,
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
        let x = UnsafeMutablePointer<Float>.allocate(capacity: n); defer { x.deallocate() }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: n); defer { y.deallocate() }
        let q = UnsafeMutableRawPointer.allocate(byteCount: max(1, type.rowBytes(n) ?? n * 4), alignment: 64)
        defer { q.deallocate() }
        let kernel = QuantRegistry.kernel(for: type)
        var err = 0.0, sig = 0.0, sampled = 0
        // On the accelerator: every sampled row at once, each with its own importance slice.
        let rowList = Array(Self.sampledRows(rows, maxRows: maxRows))
        var deviceBytes: UnsafeMutableRawPointer? = nil
        defer { deviceBytes?.deallocate() }
        if let acc = accelerator, kernel != nil, acc.supports(type), let rb = type.rowBytes(n) {
            let out = UnsafeMutableRawPointer.allocate(byteCount: max(1, rb * rowList.count), alignment: 64)
            deviceBytes = out
            let weights: [Float]? = importance.map { imp in
                rowList.flatMap { r in imp[(((r / ne1) % ne2) * n)..<(((r / ne1) % ne2) * n + n)] }
            }
            try weights.withUnsafeBufferPointerOpt { w in
                try acc.quantize(type: type, rows: rowList.count, n: n, importance: w?.baseAddress, ne1: 1,
                                 ne2: w == nil ? 1 : rowList.count, dst: out) { range, buffer in
                    for (k, i) in range.enumerated() {
                        try source.readRows(index, rows: rowList[i]..<(rowList[i] + 1), into: buffer + k * n)
                    }
                }
            }
        }
        for (k, r) in rowList.enumerated() {
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

    /// The cache file of error key `key` under `folder`.
    public static func cacheURL(folder: URL, key: String) -> URL {
        folder.appendingPathComponent("\(key.prefix(32)).json")
    }

    /// The cached table of `key` at `url` (empty when absent, unreadable, of another version or key).
    public static func loadCache(_ url: URL, key: String) -> SensitivityTable {
        guard let v = try? JSONValue.parse(contentsOf: url) else { return SensitivityTable(key: key) }
        return SensitivityTable(json: v, key: key)
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
