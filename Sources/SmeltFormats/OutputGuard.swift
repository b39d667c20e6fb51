import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Refuses, before anything is written, an output path that would destroy an input of the
/// same run: the same file (after symbolic links, or the same inode through a hard link), an
/// input folder itself, or a path inside an input folder that the run reads.
public enum OutputGuard {
    /// Refuses an output folder that is a file or a folder with contents, or whose parent is missing
    /// (an empty folder may be replaced).
    public static func checkFolderTarget(_ folder: URL) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: folder.path, isDirectory: &isDir), !isDir.boolValue {
            throw SmeltError("\(folder.path) is a file, not a folder: refusing to replace it")
        }
        if fm.fileExists(atPath: folder.path), !((try? fm.contentsOfDirectory(atPath: folder.path))?.isEmpty ?? true) {
            throw SmeltError("\(folder.path) already exists and is not empty")
        }
        let parent = folder.deletingLastPathComponent()
        guard fm.fileExists(atPath: parent.path) else { throw SmeltError("cannot write \(folder.path): folder \(parent.path) does not exist") }
    }

    /// Throws `cannot write OUT: it is the input IN` (or `… inside the input folder IN`).
    /// `what` names the output in the message (`-o`, `--save-logits`, …).
    /// An input that is a shard of a split GGUF model (`NAME-0000k-of-0000n.gguf`) stands for
    /// every shard of that model.
    public static func check(output: URL, inputs: [URL], what: String = "output") throws {
        // where the output name sits (its folder resolved) and, when it exists, what it points to
        let outs = Set([location(output), resolved(output)])
        let outID = fileID(output.path)
        for input in withShards(inputs) {
            let ins = Set([location(input), resolved(input)])
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: input.path, isDirectory: &isDir)
            if !outs.isDisjoint(with: ins) || (outID != nil && outID == fileID(input.path)) {
                throw SmeltError("refusing to write \(what) \(output.path): it is the input \(input.path)")
            }
            if exists && isDir.boolValue {
                for o in outs {
                    for i in ins where o.hasPrefix(i.hasSuffix("/") ? i : i + "/") {
                        throw SmeltError("refusing to write \(what) \(output.path): it is inside the input folder \(input.path)")
                    }
                }
            }
        }
    }

    /// Refuses the shards a split output `PREFIX-0000k-of-0000n.gguf` may write (their number is
    /// known only once the model is planned) when one of them is an input: every input named so,
    /// and every existing file named so that is an input through a link.
    public static func check(splitPrefix prefix: String, inputs: [URL], what: String = "output") throws {
        let p = URL(fileURLWithPath: prefix)
        let dir = p.deletingLastPathComponent(), stem = p.lastPathComponent
        let pattern = "^" + NSRegularExpression.escapedPattern(for: stem) + "-[0-9]{5}-of-[0-9]{5}\\.gguf$"
        guard let re = try? NSRegularExpression(pattern: pattern) else { return }
        func named(_ n: String) -> Bool { re.firstMatch(in: n, range: NSRange(n.startIndex..., in: n)) != nil }
        let outFolders = Set([resolved(dir)])
        for input in withShards(inputs) {
            let name = input.standardizedFileURL.lastPathComponent
            let folders = Set([resolved(input.deletingLastPathComponent()), resolved(input).components(separatedBy: "/").dropLast().joined(separator: "/")])
            if !outFolders.isDisjoint(with: folders) && (named(name) || named(URL(fileURLWithPath: resolved(input)).lastPathComponent)) {
                throw SmeltError("refusing to write \(what) \(prefix)-*-of-*.gguf: the shard names include the input \(input.path)")
            }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where named(name) {
            try check(output: dir.appendingPathComponent(name), inputs: inputs, what: what)
        }
    }

    /// `inputs` with, for each shard of a split GGUF model, the other shards found beside it.
    static func withShards(_ inputs: [URL]) -> [URL] {
        var out: [URL] = []
        for input in inputs {
            out.append(input)
            let name = input.lastPathComponent
            guard let r = name.range(of: #"-[0-9]{5}-of-[0-9]{5}\.gguf$"#, options: .regularExpression) else { continue }
            let stem = String(name[..<r.lowerBound]), count = String(name[r].dropFirst(10).prefix(5))
            let dir = input.deletingLastPathComponent()
            for other in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            where other != name && other.hasPrefix(stem + "-") && other.hasSuffix("-of-\(count).gguf")
                && other.utf8.count == name.utf8.count {
                out.append(dir.appendingPathComponent(other))
            }
        }
        return out
    }

    /// The absolute path with every symbolic link resolved (the path itself when it does not exist).
    static func resolved(_ url: URL) -> String {
        let abs = url.standardizedFileURL
        if let r = realpath(abs.path, nil) {
            defer { free(r) }
            return String(cString: r)
        }
        return location(url)
    }

    /// The absolute path with the folder's symbolic links resolved, the last component kept as is.
    static func location(_ url: URL) -> String {
        let abs = url.standardizedFileURL
        let parent = abs.deletingLastPathComponent()
        if let r = realpath(parent.path, nil) {
            defer { free(r) }
            let p = String(cString: r)
            return (p == "/" ? "" : p) + "/" + abs.lastPathComponent
        }
        return abs.path
    }

    /// Device and inode of an existing file.
    static func fileID(_ path: String) -> [UInt64]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [UInt64(st.st_dev), UInt64(st.st_ino)]
    }
}
