import Foundation
import WinnowCore
import WinnowData

/// Which parameter tensors a gradient-based score or PRESENCE's self-influence uses.
///
///     let sel = try ParameterSelection(.lastLayer, layout: model.parameterLayout)
public struct ParameterSelection: Sendable, Equatable {
    /// A selection by role, resolved against a model's `ParameterLayout`.
    public enum Spec: Sendable, Hashable, CustomStringConvertible, Codable {
        /// Every tensor.
        case all
        /// The task head.
        case classifier
        /// The first transformer layer (norms included).
        case firstLayer
        /// The last transformer layer (norms included).
        case lastLayer
        /// The embedding tables (and their norm, where the family has one).
        case embeddings
        /// The LoRA adapter's A and B matrices (`*.lora_A.weight`, `*.lora_B.weight`).
        case lora
        /// Tensors whose Hugging Face name starts with one of these (a prefix ending in a digit ends at a
        /// name component: `model.layers.1` is layer 1, not 10-19), or that a keyword in the list selects
        /// (`lora,score`: the adapter and the head).
        case prefixes([String])

        /// The words `init(parsing:)` takes, for help texts.
        public static let syntax = "all, classifier, first-layer, last-layer, embeddings, lora, or comma-separated tensor-name prefixes"

        /// Parses `all`, `classifier`, `first-layer`, `last-layer`, `embeddings`, `lora`, or `PREFIX,PREFIX,...`.
        public init?(parsing s: String) {
            switch s {
            case "all": self = .all
            case "classifier": self = .classifier
            case "first-layer": self = .firstLayer
            case "last-layer": self = .lastLayer
            case "embeddings": self = .embeddings
            case "lora": self = .lora
            default:
                let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !parts.isEmpty else { return nil }
                self = .prefixes(parts)
            }
        }

        /// Encoded as the string `init(parsing:)` reads (run descriptions and plans stay readable).
        public init(from decoder: Decoder) throws {
            let s = try decoder.singleValueContainer().decode(String.self)
            guard let spec = Spec(parsing: s) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a parameter selection: '\(s)'"))
            }
            self = spec
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(description)
        }

        public var description: String {
            switch self {
            case .all: "all"
            case .classifier: "classifier"
            case .firstLayer: "first-layer"
            case .lastLayer: "last-layer"
            case .embeddings: "embeddings"
            case .lora: "lora"
            case let .prefixes(p): p.joined(separator: ",")
            }
        }
    }

    /// The selected tensor names, in model order.
    public let names: [String]
    /// The role or prefixes the names were selected by.
    public let spec: Spec

    /// The tensors of `layout` that `spec` selects.
    ///
    /// - Throws: `WinnowError.invalidOption` when nothing matches, listing the names that exist.
    public init(_ spec: Spec, layout: ParameterLayout) throws {
        self.spec = spec
        if case let .prefixes(parts) = spec, parts.count > 1 || Spec(parsing: parts[0]).map({ $0 != spec }) == true {
            // A list: each item is a keyword or a prefix, resolved on its own; the union, in model order.
            var chosen = Set<String>()
            for part in parts {
                let item = Spec(parsing: part) ?? .prefixes([part])
                do { chosen.formUnion(try ParameterSelection(item, layout: layout).names) } catch WinnowError.invalidOption(_, let why) {
                    throw WinnowError.invalidOption(name: "params", reason: "in '\(spec)': " + why)
                }
            }
            names = layout.names.filter { chosen.contains($0) }
            return
        }
        let prefixes: [String]
        switch spec {
        case .all: prefixes = [""]
        case .classifier: prefixes = layout.headPrefixes
        case .firstLayer: prefixes = Array(layout.layerPrefixes.prefix(1))
        case .lastLayer: prefixes = Array(layout.layerPrefixes.suffix(1))
        case .embeddings: prefixes = layout.embeddingPrefixes
        case .lora: prefixes = []
        case let .prefixes(p): prefixes = p
        }
        let all = layout.names
        names = spec == .lora ? all.filter { $0.contains(".lora_A.") || $0.contains(".lora_B.") }
            : all.filter { n in prefixes.contains { Self.matches(n, prefix: $0) } }
        if names.isEmpty && spec == .lora {
            throw WinnowError.invalidOption(name: "params", reason: "'lora' selects no tensors: the model has no LoRA adapter")
        }
        if names.isEmpty {
            let examples = Set(all.map { String($0.split(separator: ".").prefix(3).joined(separator: ".")) }).sorted().prefix(6)
            throw WinnowError.invalidOption(name: "params", reason:
                "'\(spec)' selects no tensors; names start with e.g. \(examples.joined(separator: ", "))")
        }
    }

    /// Whether `name` starts with `prefix`, at a component boundary when the prefix ends in a digit.
    static func matches(_ name: String, prefix p: String) -> Bool {
        guard name.hasPrefix(p) else { return false }
        guard let last = p.last, last.isNumber, name.count > p.count else { return true }
        return name[name.index(name.startIndex, offsetBy: p.count)] == "."
    }

    /// True when the tensor named `name` is selected.
    public func contains(_ name: String) -> Bool { names.contains(name) }
}
