import ArgumentParser
import Foundation
import Winnow

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "List the tensors of a .safetensors file: names, dtypes, shapes, sizes.")

    @Argument(help: "A .safetensors file (or a model folder holding model.safetensors).")
    var file: String

    func run() throws {
        var url = URL(fileURLWithPath: file)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            url = url.appendingPathComponent("model.safetensors")
        }
        let f = try SafeTensorsFile(url: url)
        let nameWidth = max(6, f.entries.map(\.name.count).max() ?? 0)
        print("\(url.path): \(f.entries.count) tensors")
        for (k, v) in f.metadata.sorted(by: { $0.key < $1.key }) { print("metadata \(k) = \(v)") }
        print("name".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  dtype  shape                 bytes")
        var total = 0, params = 0
        for e in f.entries.sorted(by: { $0.name < $1.name }) {
            let shape = "[" + e.shape.map(String.init).joined(separator: ", ") + "]"
            print(e.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                  + e.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) + "  "
                  + shape.padding(toLength: 20, withPad: " ", startingAt: 0) + "  \(e.end - e.begin)")
            total += e.end - e.begin
            params += e.shape.reduce(1, *)
        }
        print(String(format: "total: %d values, %.2f MB", params, Double(total) / 1e6))
    }
}
