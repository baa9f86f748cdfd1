import Foundation

/// A file's content fingerprint: 64-bit FNV-1a over its bytes, as 16 hex digits. A run records the one
/// of its training file (`winnow.json`'s `data_fnv1a64`), so scores that read the run's per-example
/// training dynamics can tell the file they are given from another, reordered or edited one.
package enum FileFingerprint {
    /// The fingerprint of the file at `url`, read in 1 MiB chunks.
    ///
    /// - Throws: `WinnowError.missingFile` when the file cannot be opened.
    package static func fnv1a64(_ url: URL) throws -> String {
        guard let h = FileHandle(forReadingAtPath: url.path) else {
            throw WinnowError.missingFile(path: url.path, reason: "cannot open for reading")
        }
        defer { try? h.close() }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
                for byte in b { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            }
        }
        return String(format: "%016llx", hash)
    }

    /// Whether `url` is a regular file (not a pipe, device or folder), following symbolic links.
    package static func isRegularFile(_ url: URL) -> Bool {
        var st = stat()
        return stat(url.path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// A stamp of the weight files under `roots` (a model or run folder, its `checkpoint-*` folders, or a
    /// file): each `.safetensors` and `.gguf` file's path, size and modification time (optimizer state
    /// left out), hashed. Scores saved in parts or shards record it, so that parts made before a model
    /// changed are not joined with parts made after; reading the weights themselves would cost as much as
    /// loading them.
    package static func weightsStamp(_ roots: [URL]) -> String {
        let fm = FileManager.default
        var entries: [String] = []
        func add(_ u: URL) {
            let name = u.lastPathComponent.lowercased()
            guard (name.hasSuffix(".safetensors") || name.hasSuffix(".gguf")) && name != "optimizer.safetensors",
                  let a = try? fm.attributesOfItem(atPath: u.path) else { return }
            let size = (a[.size] as? NSNumber)?.intValue ?? 0
            let modified = (a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            entries.append("\(u.standardizedFileURL.path):\(size):\(modified)")
        }
        func folder(_ u: URL, depth: Int) {
            for c in (try? fm.contentsOfDirectory(at: u, includingPropertiesForKeys: nil)) ?? [] {
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: c.path, isDirectory: &isDir) else { continue }
                if isDir.boolValue { if depth == 0 && c.lastPathComponent.hasPrefix("checkpoint-") { folder(c, depth: 1) } } else { add(c) }
            }
        }
        for r in roots {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: r.path, isDirectory: &isDir) else { continue }
            if isDir.boolValue { folder(r, depth: 0) } else { add(r) }
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in entries.sorted().joined(separator: "\n").utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return String(format: "%016llx", hash)
    }

    /// A digest of the weights `roots` name (model folders, such as the checkpoints a score reads, or weight
    /// files) that does not depend on when they were written or copied: each `.safetensors` and `.gguf` file's
    /// name, size, and 64-bit FNV-1a of three 1 MiB samples (its start, holding the header and the first
    /// tensors, its middle and its end), optimizer state left out; a folder's subfolders are not read. Shard
    /// manifests record it, so that `winnow merge` refuses shards scored before and after a model was
    /// retrained or replaced (a copy's modification time differs; a retrained model's values differ in every
    /// sample). Costs three reads of 1 MiB per file.
    package static func weightsDigest(_ roots: [URL]) -> String {
        let fm = FileManager.default
        var entries: [String] = []
        func add(_ u: URL, name: String) {
            let lower = u.lastPathComponent.lowercased()
            guard (lower.hasSuffix(".safetensors") || lower.hasSuffix(".gguf")) && lower != "optimizer.safetensors",
                  let h = FileHandle(forReadingAtPath: u.path) else { return }
            defer { try? h.close() }
            let size = (try? h.seekToEnd()) ?? 0
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            let chunk: UInt64 = 1 << 20
            for offset in Set([0, size > chunk ? (size - chunk) / 2 : 0, size > chunk ? size - chunk : 0]).sorted() {
                guard (try? h.seek(toOffset: offset)) != nil, let d = try? h.read(upToCount: Int(chunk)) else { continue }
                d.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
                    for byte in b { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
                }
            }
            entries.append("\(name):\(size):\(String(format: "%016llx", hash))")
        }
        for r in roots {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: r.path, isDirectory: &isDir) else { continue }
            guard isDir.boolValue else { add(r, name: r.lastPathComponent); continue }
            for c in ((try? fm.contentsOfDirectory(atPath: r.path)) ?? []).sorted() {
                var sub: ObjCBool = false
                let u = r.appendingPathComponent(c)
                if fm.fileExists(atPath: u.path, isDirectory: &sub), !sub.boolValue { add(u, name: "\(r.lastPathComponent)/\(c)") }
            }
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in entries.sorted().joined(separator: "\n").utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return String(format: "%016llx", hash)
    }

    /// The key runs record it under in `winnow.json`.
    package static let runInfoKey = "data_fnv1a64"
}

/// What differs between two values saved as JSON (a saved manifest or plan and this run's).
package enum Differences {
    /// `key: A there, B now` for each key whose value differs, nested keys dotted (`training.epochs: 6
    /// there, 2 now`), joined by "; "; nil when `old` is nil or nothing differs.
    package static func describe<T: Encodable>(_ old: T?, _ new: T) -> String? {
        guard let old, let a = try? JSONSerialization.jsonObject(with: JSONEncoder().encode(old)) as? [String: Any],
              let b = try? JSONSerialization.jsonObject(with: JSONEncoder().encode(new)) as? [String: Any] else { return nil }
        var out: [String] = []
        compare(a, b, prefix: "", into: &out)
        return out.isEmpty ? nil : out.joined(separator: "; ")
    }

    static func compare(_ a: [String: Any], _ b: [String: Any], prefix: String, into out: inout [String]) {
        for k in Set(a.keys).union(b.keys).sorted() {
            if let x = a[k] as? [String: Any], let y = b[k] as? [String: Any] { compare(x, y, prefix: prefix + k + ".", into: &out); continue }
            let x = a[k].map(text), y = b[k].map(text)
            if x != y { out.append("\(prefix)\(k): \(x ?? "none") there, \(y ?? "none") now") }
        }
    }

    /// A JSON value as text with its keys sorted (a dictionary's own order is not stable).
    static func text(_ v: Any) -> String {
        guard let d = try? JSONSerialization.data(withJSONObject: [v], options: [.sortedKeys, .fragmentsAllowed]),
              let s = String(data: d, encoding: .utf8) else { return "\(v)" }
        return String(s.dropFirst().dropLast())
    }
}
