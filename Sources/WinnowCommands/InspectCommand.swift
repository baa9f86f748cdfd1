import ArgumentParser
import Foundation
import Winnow

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a .safetensors or .gguf file (names, types, shapes, sizes) and its metadata.")

    @Argument(help: "A .safetensors or .gguf file, or a model folder holding model.safetensors (or the shards of model.safetensors.index.json), a PEFT adapter's adapter_model.safetensors, or a .gguf file.")
    var file: String

    func run() throws {
        let url = URL(fileURLWithPath: file)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            var st = stat()
            throw WinnowError.missingFile(path: url.path, reason: lstat(url.path, &st) == 0
                ? "a symbolic link whose target cannot be reached (missing, or a loop of links)" : "no such file or folder")
        }
        guard isDir.boolValue else { return try inspect(url) }
        let fm = FileManager.default
        for name in ["model.safetensors", "adapter_model.safetensors"] where fm.fileExists(atPath: url.appendingPathComponent(name).path) {
            return try inspect(url.appendingPathComponent(name))
        }
        let index = url.appendingPathComponent("model.safetensors.index.json")
        if fm.fileExists(atPath: index.path) {
            // A sharded Hugging Face folder: every shard its index names, in order.
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(contentsOf: index))) as? [String: Any],
                  let map = obj["weight_map"] as? [String: String] else {
                throw WinnowError.invalidFile(path: index.path, line: nil, reason: "field 'weight_map': missing or not an object of file names")
            }
            for name in Set(map.values).sorted() {
                guard !name.contains("/") else { throw WinnowError.invalidFile(path: index.path, line: nil, reason: "shard '\(name)' is not a file name") }
                try inspect(url.appendingPathComponent(name))
            }
            return
        }
        let ggufs = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        guard let first = ggufs.first else {
            throw WinnowError.missingFile(path: url.path, reason: "no model.safetensors, adapter_model.safetensors, model.safetensors.index.json or .gguf file in this folder")
        }
        if ggufs.count > 1 {
            printError("note: \(url.path) holds \(ggufs.count) .gguf files (\(ggufs.joined(separator: ", "))); showing \(first), the one the other commands load")
        }
        try inspect(url.appendingPathComponent(first))
    }

    /// Lists one .safetensors or .gguf file, told apart by content.
    func inspect(_ url: URL) throws {
        // A pipe or device would block or never end: only regular files are read (a folder named like a file is said so).
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && !FileFingerprint.isRegularFile(url) {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: isDir.boolValue
                ? "is a folder, not a .safetensors or .gguf file" : "is not a regular file (a pipe or device?): inspect reads model files")
        }
        // By content, not name: GGUF files start with "GGUF"; safetensors with an 8-byte header length and '{'.
        let head = (try? FileHandle(forReadingFrom: url)).flatMap { h in defer { try? h.close() }; return try? h.read(upToCount: 9) } ?? Data()
        if head.isEmpty && FileFingerprint.isRegularFile(url) { throw WinnowError.invalidFile(path: url.path, line: nil, reason: "is empty (0 bytes): not a model file") }
        if head.starts(with: Data("GGUF".utf8)) { return try inspectGGUF(url) }
        if head.count == 9 && head[head.startIndex + 8] != UInt8(ascii: "{") && FileManager.default.fileExists(atPath: url.path) {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "is neither a safetensors file (an 8-byte header length, then a JSON header) nor a GGUF file")
        }
        let f = try SafeTensorsFile(url: url)
        print("\(url.path): \(f.entries.count) tensors")
        for (k, v) in f.metadata.sorted(by: { $0.key < $1.key }) { print("metadata \(k) = \(v)") }
        table(f.entries.sorted { $0.name < $1.name }.map { ($0.name, $0.dtype.rawValue, $0.shape, $0.end - $0.begin) })
    }

    func inspectGGUF(_ url: URL) throws {
        let f = try GGUFFile(url: url)
        print("\(url.path): GGUF v\(f.version), \(f.tensors.count) tensors, \(f.keys.count) metadata keys, alignment \(f.alignment)")
        for k in f.keys { print("metadata \(k) = \(f.metadata[k]!.summary)") }
        // Shapes slowest dimension first, as PyTorch shows them (ggml stores them the other way round).
        table(f.tensors.map { ($0.name, $0.type.name, $0.shape, $0.end - $0.begin) })
    }

    func table(_ rows: [(name: String, type: String, shape: [Int], bytes: Int)]) {
        // Columns as wide as their widest entry: a type name (IQ2_XXS, F8_E4M3) or a shape is never cut.
        func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        let nameWidth = max(6, rows.map(\.name.count).max() ?? 0)
        let typeWidth = max(5, rows.map(\.type.count).max() ?? 0), shapeWidth = max(20, rows.map { shape($0.shape).count }.max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        print(pad("name", nameWidth) + "  " + pad("type", typeWidth) + "  " + pad("shape", shapeWidth) + "  bytes")
        var total = 0, values = 0
        for r in rows {
            print(pad(r.name, nameWidth) + "  " + pad(r.type, typeWidth) + "  " + pad(shape(r.shape), shapeWidth) + "  \(r.bytes)")
            total += r.bytes
            values += r.shape.reduce(1, *)
        }
        print(String(format: "total: %d values, %.2f MB", values, Double(total) / 1e6))
    }
}
