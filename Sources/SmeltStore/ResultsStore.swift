import Foundation
import GRDB
import SmeltFormats
#if canImport(Glibc)
import Glibc
#endif

/// The results store: one SQLite file (WAL mode, versioned migrations) holding every
/// run of quantize, imatrix, perplexity/KL-divergence and sensitivity, the identity of
/// each file they touched, and each model's tensor plan. The only code in Smelt that
/// talks SQL. Several processes may write at once (immediate transactions, a busy
/// timeout). A file that is not a Smelt store, or is corrupt, is refused and left untouched.
public final class ResultsStore {
    /// `PRAGMA application_id` of a Smelt store ("SMLT").
    public static let applicationID: Int32 = 0x534D_4C54
    /// The schema versions, oldest first (each a migration).
    public static let schemaVersions = ["v1", "v2", "v3"]

    public let url: URL
    private let db: DatabaseQueue

    // MARK: - Location

    /// `$SMELT_STORE`, else `$XDG_DATA_HOME/smelt/results.sqlite`, else `~/.local/share/smelt/results.sqlite`.
    public static func defaultURL(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let p = environment["SMELT_STORE"], !p.isEmpty { return URL(fileURLWithPath: p) }
        if let x = environment["XDG_DATA_HOME"], !x.isEmpty {
            return URL(fileURLWithPath: x).appendingPathComponent("smelt/results.sqlite")
        }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".local/share/smelt/results.sqlite")
    }

    // MARK: - Opening

    /// Opens (creating it and its folder if needed) and migrates the store at `url`.
    /// `upTo` stops at an older schema version (tests of migrations).
    public init(url: URL, upTo version: String? = nil) throws {
        self.url = url
        let path = url.path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { throw SmeltError("\(path): is a folder, not a results store") }
            try Self.checkHeader(path)
        } else {
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw SmeltError("cannot create the folder of the results store \(path): \(Self.describe(error))")
            }
        }
        var config = Configuration()
        config.busyMode = .timeout(60)
        config.label = "smelt-results"
        do {
            db = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw SmeltError("\(path): cannot open the results store: \(Self.describe(error))")
        }
        try prepare(upTo: version)
    }

    /// A non-empty file must start with SQLite's magic ("SQLite format 3\0").
    private static func checkHeader(_ path: String) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { throw SmeltError("\(path): cannot read the results store") }
        defer { try? h.close() }
        let head = (try? h.read(upToCount: 16)) ?? Data()
        if head.isEmpty { return }
        guard head == Data("SQLite format 3\0".utf8) else {
            throw SmeltError("\(path): not an SQLite database, so not a Smelt results store (left untouched)")
        }
    }

    private func prepare(upTo version: String?) throws {
        let path = url.path
        // Validate before anything writes: a foreign or corrupt database is never modified.
        do {
            try db.writeWithoutTransaction { db in
                let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                let objects = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
                if objects > 0 && appID != Self.applicationID {
                    throw SmeltError("\(path): an SQLite database of another program, not a Smelt results store (left untouched)")
                }
                if objects > 0 {
                    let check = try String.fetchAll(db, sql: "PRAGMA quick_check")
                    if check != ["ok"] {
                        let first = (check.first ?? "quick_check failed").split(whereSeparator: \.isNewline)
                            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("***") }.first ?? "integrity check failed"
                        throw SmeltError("\(path): corrupt results store (\(first)); left untouched")
                    }
                    if try Self.migrator.hasBeenSuperseded(db) {
                        throw SmeltError("\(path): written by a newer Smelt (schema \(try Self.migrator.appliedIdentifiers(db).sorted().joined(separator: ", "))); upgrade Smelt")
                    }
                }
                // A new store is marked as Smelt's before anything else is created in it, so that
                // another process opening it meanwhile does not take it for a foreign database.
                if objects == 0 && appID != Self.applicationID {
                    try db.execute(sql: "PRAGMA application_id = \(Self.applicationID)")
                }
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? ""
                if mode.lowercased() != "wal" { _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
            }
        } catch let e as SmeltError {
            throw e
        } catch {
            throw SmeltError("\(path): not a usable results store: \(Self.describe(error)) (left untouched)")
        }
        // Two processes may create a new store at once: the loser of the race finds
        // the tables made and retries, seeing the migrations applied.
        var attempt = 0
        while true {
            do {
                if let version { try Self.migrator.migrate(db, upTo: version) } else { try Self.migrator.migrate(db) }
                return
            } catch {
                attempt += 1
                if attempt >= 5 { throw SmeltError("\(path): cannot migrate the results store: \(Self.describe(error))") }
                usleep(useconds_t(20_000 * attempt))
            }
        }
    }

    /// The schema, one migration per version (docs/REPORTS.md).
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: "PRAGMA application_id = \(ResultsStore.applicationID)")
            try db.execute(sql: """
                CREATE TABLE file (
                    key TEXT PRIMARY KEY, sha256 TEXT, name TEXT NOT NULL, bytes INTEGER,
                    first_path TEXT, recorded_at TEXT NOT NULL);
                CREATE TABLE hash_cache (
                    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
                CREATE TABLE model (
                    key TEXT PRIMARY KEY, file_type INTEGER, file_type_name TEXT, tensor_bytes INTEGER NOT NULL,
                    parameters INTEGER NOT NULL, bits_per_weight REAL NOT NULL, tensor_count INTEGER NOT NULL);
                CREATE TABLE model_tensor (
                    model_key TEXT NOT NULL REFERENCES model(key) ON DELETE CASCADE, idx INTEGER NOT NULL,
                    name TEXT NOT NULL, type TEXT NOT NULL, shape TEXT NOT NULL, bytes INTEGER NOT NULL,
                    PRIMARY KEY (model_key, idx));
                CREATE TABLE run (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, source TEXT NOT NULL,
                    started_at TEXT NOT NULL, wall_seconds REAL, smelt_version TEXT NOT NULL, host TEXT NOT NULL,
                    cpu TEXT NOT NULL, command_line TEXT NOT NULL,
                    model_key TEXT, model_path TEXT, input_key TEXT, input_path TEXT,
                    text_key TEXT, text_path TEXT, text_tokens INTEGER, imatrix_key TEXT, imatrix_path TEXT,
                    base_key TEXT, base_path TEXT, base_model_key TEXT, base_model_path TEXT,
                    recipe_name TEXT, recipe_text TEXT, context INTEGER, chunks INTEGER, batch INTEGER,
                    threads INTEGER, tokens_per_second REAL, result TEXT);
                CREATE INDEX run_model ON run(model_key);
                """)
        }
        // v2: failed runs are kept with their error (sweeps), and reports find their groups by index.
        m.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE run ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
                ALTER TABLE run ADD COLUMN error TEXT;
                CREATE INDEX run_group ON run(base_model_key, text_key, context);
                CREATE INDEX run_base ON run(base_key);
                """)
        }
        // v3: runs made by a sweep job carry the job's key (its inputs' digest), so sweeps resume.
        m.registerMigration("v3") { db in
            try db.execute(sql: """
                ALTER TABLE run ADD COLUMN sweep_job TEXT;
                CREATE INDEX run_sweep_job ON run(sweep_job);
                """)
        }
        return m
    }

    /// The schema versions applied to this store.
    public func appliedVersions() throws -> [String] {
        try db.read { try Self.migrator.appliedIdentifiers($0).sorted() }
    }

    /// One line, whatever the underlying error text looks like.
    static func describe(_ error: Error) -> String {
        let text: String
        if let e = error as? SmeltError { text = e.message }
        else if let e = error as? DatabaseError { text = e.message ?? "SQLite error \(e.resultCode.rawValue)" }
        else { text = String(describing: error) }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    private func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try db.writeWithoutTransaction { db in
                var out: T?
                try db.inTransaction(.immediate) { out = try body(db); return .commit }
                return out!
            }
        } catch let e as SmeltError { throw e } catch {
            throw SmeltError("\(url.path): results store: \(Self.describe(error))")
        }
    }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try db.read(body) } catch let e as SmeltError { throw e } catch {
            throw SmeltError("\(url.path): results store: \(Self.describe(error))")
        }
    }

    // MARK: - File identities

    /// The identity of a file or checkpoint folder: its SHA-256, taken from the hash
    /// cache when path, size and modification time are unchanged, else computed.
    /// A folder's digest is the SHA-256 of the list `name sha256` of its files.
    public func identify(_ url: URL) throws -> FileIdentity {
        let u = url.standardizedFileURL.resolvingSymlinksInPath()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir) else {
            throw SmeltError("\(url.path): no such file")
        }
        if isDir.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: u.path).sorted()
            var list = "smelt-folder-v1\n"
            var total: Int64 = 0
            for n in names where !n.hasPrefix(".") {
                let f = u.appendingPathComponent(n)
                var d: ObjCBool = false
                guard FileManager.default.fileExists(atPath: f.path, isDirectory: &d), !d.boolValue else { continue }
                let (sha, size) = try cachedHash(f)
                list += "\(n) \(sha)\n"
                total += size
            }
            let id = FileIdentity(sha256: SHA256Hasher.hex(Array(list.utf8)), path: u.path, bytes: total)
            try remember(id)
            return id
        }
        let (sha, size) = try cachedHash(u)
        let id = FileIdentity(sha256: sha, path: u.path, bytes: size)
        try remember(id)
        return id
    }

    /// The identity of a file computed without a store (no cache): for `--record-to` runs.
    public static func hashIdentity(_ url: URL) throws -> FileIdentity {
        let u = url.standardizedFileURL.resolvingSymlinksInPath()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir) else { throw SmeltError("\(url.path): no such file") }
        if isDir.boolValue {
            var list = "smelt-folder-v1\n"
            var total: Int64 = 0
            for n in try FileManager.default.contentsOfDirectory(atPath: u.path).sorted() where !n.hasPrefix(".") {
                let f = u.appendingPathComponent(n)
                var d: ObjCBool = false
                guard FileManager.default.fileExists(atPath: f.path, isDirectory: &d), !d.boolValue else { continue }
                list += "\(n) \(try SHA256Hasher.hashFile(f))\n"
                total += try fileStat(f).size
            }
            return FileIdentity(sha256: SHA256Hasher.hex(Array(list.utf8)), path: u.path, bytes: total)
        }
        return FileIdentity(sha256: try SHA256Hasher.hashFile(u), path: u.path, bytes: try fileStat(u).size)
    }

    /// Records a file Smelt has just written, with the digest computed while writing.
    public func rememberWritten(_ url: URL, sha256: String) throws -> FileIdentity {
        let u = url.standardizedFileURL.resolvingSymlinksInPath()
        let st = try Self.fileStat(u)
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO hash_cache(path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
                           arguments: [u.path, st.size, st.mtime, sha256])
        }
        let id = FileIdentity(sha256: sha256, path: u.path, bytes: st.size)
        try remember(id)
        return id
    }

    /// An identity by name only (a file named on a command line but not present).
    public func identity(named path: String) throws -> FileIdentity {
        let id = FileIdentity(sha256: nil, path: path, bytes: nil)
        try remember(id)
        return id
    }

    /// Records a file identity (once per key).
    public func remember(_ id: FileIdentity) throws {
        try write { db in
            try db.execute(sql: """
                INSERT INTO file(key, sha256, name, bytes, first_path, recorded_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(key) DO NOTHING
                """, arguments: [id.key, id.sha256, id.name, id.bytes, id.path, Self.iso(Date())])
        }
    }

    private static func fileStat(_ u: URL) throws -> (size: Int64, mtime: Int64) {
        var st = stat()
        guard stat(u.path, &st) == 0 else { throw SmeltError("\(u.path): \(String(cString: strerror(errno)))") }
        return (Int64(st.st_size), Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    private func cachedHash(_ u: URL) throws -> (String, Int64) {
        let st = try Self.fileStat(u)
        let cached = try read { db in
            try String.fetchOne(db, sql: "SELECT sha256 FROM hash_cache WHERE path = ? AND size = ? AND mtime_ns = ?",
                                arguments: [u.path, st.size, st.mtime])
        }
        if let cached { return (cached, st.size) }
        let sha = try SHA256Hasher.hashFile(u)
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO hash_cache(path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
                           arguments: [u.path, st.size, st.mtime, sha])
        }
        return (sha, st.size)
    }

    /// The identity recorded for a key, if any.
    public func file(key: String) throws -> FileIdentity? {
        try read { db in
            guard let r = try Row.fetchOne(db, sql: "SELECT * FROM file WHERE key = ?", arguments: [key]) else { return nil }
            return Self.fileIdentity(r)
        }
    }

    private static func fileIdentity(_ r: Row) -> FileIdentity {
        var id = FileIdentity(sha256: r["sha256"], path: r["first_path"] ?? r["name"], bytes: r["bytes"])
        id.key = r["key"]
        id.name = r["name"]
        return id
    }

    // MARK: - Model plans

    /// Stores a model's tensor table (once per model content; later calls are no-ops).
    public func savePlan(_ p: ModelPlanRecord) throws {
        try write { db in
            let exists = try Int.fetchOne(db, sql: "SELECT count(*) FROM model WHERE key = ?", arguments: [p.modelKey]) ?? 0
            if exists > 0 { return }
            try db.execute(sql: """
                INSERT INTO model(key, file_type, file_type_name, tensor_bytes, parameters, bits_per_weight, tensor_count)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [p.modelKey, p.fileType, p.fileTypeName, p.tensorBytes, p.parameters, p.bitsPerWeight, p.tensors.count])
            let stmt = try db.makeStatement(sql: "INSERT INTO model_tensor(model_key, idx, name, type, shape, bytes) VALUES (?, ?, ?, ?, ?, ?)")
            for (i, t) in p.tensors.enumerated() {
                try stmt.execute(arguments: [p.modelKey, i, t.name, t.type, t.shape.map(String.init).joined(separator: ","), t.bytes])
            }
        }
    }

    /// Whether a plan is stored for the model.
    public func hasPlan(modelKey: String) throws -> Bool {
        try read { try Int.fetchOne($0, sql: "SELECT count(*) FROM model WHERE key = ?", arguments: [modelKey]) ?? 0 > 0 }
    }

    /// The stored plan of a model.
    public func plan(modelKey: String) throws -> ModelPlanRecord? {
        try read { db in
            guard let m = try Row.fetchOne(db, sql: "SELECT * FROM model WHERE key = ?", arguments: [modelKey]) else { return nil }
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM model_tensor WHERE model_key = ? ORDER BY idx", arguments: [modelKey])
            let tensors = rows.map { r in
                TensorPlanEntry(name: r["name"], type: r["type"],
                                shape: (r["shape"] as String).split(separator: ",").compactMap { Int($0) }, bytes: r["bytes"])
            }
            var p = ModelPlanRecord(modelKey: modelKey, fileType: m["file_type"], fileTypeName: m["file_type_name"], tensors: tensors)
            p.tensorBytes = m["tensor_bytes"]; p.parameters = m["parameters"]; p.bitsPerWeight = m["bits_per_weight"]
            return p
        }
    }

    /// Every stored plan's totals (no tensor list), by model key.
    public func planSummaries() throws -> [String: ModelPlanRecord] {
        try read { db in
            var out: [String: ModelPlanRecord] = [:]
            for m in try Row.fetchAll(db, sql: "SELECT * FROM model") {
                var p = ModelPlanRecord(modelKey: m["key"], fileType: m["file_type"], fileTypeName: m["file_type_name"], tensors: [])
                p.tensorBytes = m["tensor_bytes"]; p.parameters = m["parameters"]; p.bitsPerWeight = m["bits_per_weight"]
                out[p.modelKey] = p
            }
            return out
        }
    }

    // MARK: - Runs

    /// Inserts a run (its file identities are recorded too); returns its id.
    @discardableResult
    public func record(_ r: RunRecord) throws -> Int64 {
        for f in [r.model, r.input, r.text, r.imatrix, r.base, r.baseModel].compactMap({ $0 }) { try remember(f) }
        return try write { db in
            try db.execute(sql: """
                INSERT INTO run(sweep_job, kind, source, status, error, started_at, wall_seconds, smelt_version, host, cpu, command_line,
                    model_key, model_path, input_key, input_path, text_key, text_path, text_tokens, imatrix_key, imatrix_path,
                    base_key, base_path, base_model_key, base_model_path, recipe_name, recipe_text, context, chunks, batch,
                    threads, tokens_per_second, result)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [
                    r.sweepJob, r.kind.rawValue, r.source, r.status, r.error, Self.iso(r.startedAt), r.wallSeconds, r.smeltVersion, r.host,
                    r.cpu, r.commandLine, r.model?.key, r.model?.path, r.input?.key, r.input?.path, r.text?.key, r.text?.path,
                    r.textTokens, r.imatrix?.key, r.imatrix?.path, r.base?.key, r.base?.path, r.baseModel?.key, r.baseModel?.path,
                    r.recipeName, r.recipeText, r.contextLength, r.chunks, r.batchSize, r.threads, r.tokensPerSecond, r.result,
                ])
            return db.lastInsertedRowID
        }
    }

    /// One run by id.
    public func run(id: Int64) throws -> RunRecord? {
        try runs(sql: "SELECT * FROM run WHERE id = ?", arguments: [id]).first
    }

    /// Runs matching a filter, oldest first.
    public func runs(_ f: RunFilter = RunFilter()) throws -> [RunRecord] {
        var sql = "SELECT * FROM run WHERE 1"
        var args: [DatabaseValueConvertible?] = []
        if let k = f.kind { sql += " AND kind = ?"; args.append(k.rawValue) }
        if let s = f.since { sql += " AND started_at >= ?"; args.append(Self.iso(s)) }
        func match(_ column: String, _ needle: String?) {
            guard let needle else { return }
            sql += " AND (instr(\(column)_path, ?) > 0 OR \(column)_key LIKE ? ESCAPE '\\')"
            let escaped = needle.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            args.append(needle); args.append(escaped + "%")
        }
        match("model", f.model)
        match("base_model", f.base)
        match("text", f.text)
        sql += " ORDER BY id"
        return try runs(sql: sql, arguments: StatementArguments(args))
    }

    /// Runs recorded for a sweep job (by the job's key).
    public func runs(sweepJob key: String) throws -> [RunRecord] {
        try runs(sql: "SELECT * FROM run WHERE sweep_job = ? ORDER BY id", arguments: [key])
    }

    /// The run that wrote a KL-divergence base file (by the file's key), if recorded.
    public func runWritingBase(key: String) throws -> RunRecord? {
        try runs(sql: "SELECT * FROM run WHERE base_key = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                 arguments: [key, RunKind.perplexity.rawValue]).first
    }

    /// Deletes a run; false when there is none with that id.
    public func delete(id: Int64) throws -> Bool {
        try write { db in
            try db.execute(sql: "DELETE FROM run WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    /// Number of runs stored.
    public func runCount() throws -> Int {
        try read { try Int.fetchOne($0, sql: "SELECT count(*) FROM run") ?? 0 }
    }

    private func runs(sql: String, arguments: StatementArguments) throws -> [RunRecord] {
        try read { db in
            var files: [String: FileIdentity] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT * FROM file") { files[r["key"]] = Self.fileIdentity(r) }
            var types: [String: String] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT key, file_type_name FROM model WHERE file_type_name IS NOT NULL") {
                types[r["key"]] = r["file_type_name"]
            }
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                func ref(_ c: String) -> FileIdentity? {
                    guard let key: String = row["\(c)_key"] else { return nil }
                    var f = files[key] ?? FileIdentity(sha256: nil, path: row["\(c)_path"] ?? key, bytes: nil)
                    if let p: String = row["\(c)_path"] { f.path = p }
                    f.key = key
                    return f
                }
                var r = RunRecord(kind: RunKind(rawValue: row["kind"]) ?? .perplexity,
                                  startedAt: Self.date(row["started_at"]) ?? Date(timeIntervalSince1970: 0),
                                  smeltVersion: row["smelt_version"], host: row["host"], cpu: row["cpu"],
                                  commandLine: row["command_line"])
                r.id = row["id"]; r.source = row["source"]; r.status = row["status"]; r.error = row["error"]
                r.wallSeconds = row["wall_seconds"]
                r.model = ref("model"); r.input = ref("input"); r.text = ref("text"); r.imatrix = ref("imatrix")
                r.base = ref("base"); r.baseModel = ref("base_model")
                r.textTokens = row["text_tokens"]; r.recipeName = row["recipe_name"]; r.recipeText = row["recipe_text"]
                r.contextLength = row["context"]; r.chunks = row["chunks"]; r.batchSize = row["batch"]; r.threads = row["threads"]
                r.tokensPerSecond = row["tokens_per_second"]; r.result = row["result"]
                r.modelType = r.model.flatMap { types[$0.key] }
                r.sweepJob = row["sweep_job"]
                return r
            }
        }
    }

    // MARK: - Dates

    nonisolated(unsafe) private static let isoFormatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
    /// ISO 8601 with milliseconds, UTC (how dates are stored).
    public static func iso(_ d: Date) -> String { isoFormatter.string(from: d) }
    /// Parses a stored date (or a `--since` date: `2026-12-03`, or full ISO 8601).
    public static func date(_ s: String?) -> Date? {
        guard let s else { return nil }
        if let d = isoFormatter.date(from: s) { return d }
        let plain = ISO8601DateFormatter()
        if let d = plain.date(from: s) { return d }
        plain.formatOptions = [.withFullDate]
        return plain.date(from: s)
    }
}

extension ResultsStore {
    /// Writes a store of schema version 1 holding one perplexity run, as Smelt's first
    /// store did (the committed migration fixture was made by this; tests only).
    static func writeVersion1Fixture(at url: URL, result: String) throws {
        let s = try ResultsStore(url: url, upTo: "v1")
        let file = FileIdentity(sha256: String(repeating: "ab", count: 32), path: "/models/m-bf16.gguf", bytes: 1234)
        let text = FileIdentity(sha256: String(repeating: "cd", count: 32), path: "/data/wiki.test.raw", bytes: 99)
        try s.remember(file)
        try s.remember(text)
        try s.write { db in
            try db.execute(sql: """
                INSERT INTO run(kind, source, started_at, wall_seconds, smelt_version, host, cpu, command_line,
                    model_key, model_path, text_key, text_path, text_tokens, context, chunks, batch, threads, tokens_per_second, result)
                VALUES ('perplexity', 'smelt', '2026-11-22T10:00:00.000Z', 12.5, '0.1.0', 'fixture-host', 'fixture cpu (2 cores)',
                    'smelt perplexity m-bf16.gguf -f wiki.test.raw', ?, '/models/m-bf16.gguf', ?, '/data/wiki.test.raw', 4096, 512, 8,
                    2048, 2, 1000.0, ?)
                """, arguments: [file.key, text.key, result])
        }
        try s.db.writeWithoutTransaction { try $0.checkpoint(.truncate) }
    }
}
