import Foundation
import WinnowCore
import WinnowData

/// Which parameter tensors a gradient-based score uses (`--params`).
///
///     let sel = try ParameterSelection("last-layer", names: model.parameters.names, layers: 4)
public struct ParameterSelection: Sendable, Equatable {
    /// The selected tensor names, in model order.
    public let names: [String]
    public let spec: String

    /// `all`, `classifier` (the head), `first-layer`, `last-layer`, `embeddings`, or comma-separated
    /// tensor-name prefixes. An unmatched selection is an error listing what exists.
    public init(_ spec: String, names all: [String], layers: Int) throws {
        self.spec = spec
        let prefixes: [String]
        switch spec {
        case "all": prefixes = [""]
        case "classifier": prefixes = ["classifier."]
        case "first-layer": prefixes = ["bert.encoder.layer.0."]
        case "last-layer": prefixes = ["bert.encoder.layer.\(max(0, layers - 1))."]
        case "embeddings": prefixes = ["bert.embeddings."]
        default: prefixes = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        names = all.filter { n in prefixes.contains { n.hasPrefix($0) } }
        if names.isEmpty {
            throw WinnowError.invalidOption(name: "--params", reason:
                "'\(spec)' selects no tensors; names start with e.g. \(Set(all.map { String($0.split(separator: ".").prefix(3).joined(separator: ".")) }).sorted().prefix(6).joined(separator: ", "))")
        }
    }

    public func contains(_ name: String) -> Bool { names.contains(name) }
}
