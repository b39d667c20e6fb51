import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Refuses, before anything is written, an output path that would destroy an input of the
/// same run: the same file (after symbolic links, or the same inode through a hard link), an
/// input folder itself, or a path inside an input folder that the run reads.
public enum OutputGuard {
    /// Throws `cannot write OUT: it is the input IN` (or `… inside the input folder IN`).
    /// `what` names the output in the message (`-o`, `--save-logits`, …).
    public static func check(output: URL, inputs: [URL], what: String = "output") throws {
        // where the output name sits (its folder resolved) and, when it exists, what it points to
        let outs = Set([location(output), resolved(output)])
        let outID = fileID(output.path)
        for input in inputs {
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
