import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The temporary files and folders this process is writing (`.NAME.smelt-PID-N.tmp`), so that an
/// interruption leaves nothing behind: on SIGINT or SIGTERM every registered path is removed,
/// one line `error: interrupted …` is printed and the process exits with 128 + the signal number
/// (130, 143). The handlers are installed when the first path is registered. Temporary files of
/// an earlier process that is gone (killed, power cut) are swept when a new one is created in
/// the same folder.
public enum TemporaryFiles {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var paths: Set<String> = []
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Starts tracking `url` (a file or a folder); removes stale temporary files of dead
    /// processes in its folder first.
    public static func register(_ url: URL) {
        sweep(folder: url.deletingLastPathComponent())
        lock.lock()
        defer { lock.unlock() }
        paths.insert(url.path)
        if sources.isEmpty { installHandlers() }
    }

    /// Stops tracking `url` (renamed into place, or removed).
    public static func unregister(_ url: URL) {
        lock.lock()
        paths.remove(url.path)
        lock.unlock()
    }

    /// The name of a temporary file for `url` in its folder: `.NAME.smelt-PID-RANDOM.tmp`.
    public static func name(for url: URL) -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).smelt-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp")
    }

    /// The PID in a temporary name `.NAME.smelt-PID[-N].tmp`, nil for other names.
    static func ownerPID(_ name: String) -> pid_t? {
        guard name.hasPrefix("."), name.hasSuffix(".tmp"), let r = name.range(of: ".smelt-", options: .backwards) else { return nil }
        let rest = name[r.upperBound...].dropLast(4)
        let parts = rest.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let pid = pid_t(parts[0]), pid > 0,
              parts.count == 1 || UInt32(parts[1]) != nil else { return nil }
        return pid
    }

    /// Removes `.*.smelt-PID-*.tmp` entries of `folder` whose process no longer exists.
    /// Returns the names removed.
    @discardableResult
    public static func sweep(folder: URL) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var removed: [String] = []
        for n in names {
            guard let pid = ownerPID(n), pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }  // alive (or not ours to know): keep
            if (try? FileManager.default.removeItem(at: folder.appendingPathComponent(n))) != nil { removed.append(n) }
        }
        return removed
    }

    /// Removes every registered path now (the signal path; also usable before exiting).
    public static func removeAll() {
        lock.lock()
        let all = paths
        paths.removeAll()
        lock.unlock()
        for p in all { try? FileManager.default.removeItem(atPath: p) }
    }

    private static func installHandlers() {
        for (sig, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: DispatchQueue.global())
            s.setEventHandler {
                removeAll()
                FileHandle.standardError.write(Data("\nerror: interrupted (\(name)): temporary files removed, no output written\n".utf8))
                _exit(128 + sig)
            }
            s.resume()
            sources.append(s)
        }
    }
}
