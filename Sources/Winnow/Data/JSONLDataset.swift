import Foundation

/// One example as read from a JSONL line, before tokenization.
public struct Example: Sendable {
    /// 1-based line in the input file.
    public var line: Int
    public var id: String?
    public var text: String?
    public var pair: String?
    /// The label as written (strings and integers both become strings), or nil.
    public var label: String?
    /// Pre-tokenized ids, when the line carries `input_ids` instead of text.
    public var inputIDs: [Int32]?
    public var tokenTypeIDs: [Int32]?
}

/// Field names used to read a JSONL file (design section 2).
public struct FieldNames: Sendable, Equatable {
    public var text: String?
    public var pair: String?
    public var label: String?

    public init(text: String? = nil, pair: String? = nil, label: String? = nil) {
        self.text = text
        self.pair = pair
        self.label = label
    }

    static let textCandidates = ["text", "sentence", "sentence1", "premise"]
    static let pairCandidates = ["text_pair", "sentence2", "hypothesis"]
    static let labelCandidates = ["label", "gold_label"]
}

/// A JSONL data file: one example a line (text, optional pair, label, optional id).
///
///     let data = try JSONLDataset(url: URL(fileURLWithPath: "data/rotten-tomatoes/train.jsonl"))
///     print(data.examples.count, data.skipped)
public struct JSONLDataset: Sendable {
    public let url: URL
    /// Examples with a usable label (or all examples when `requireLabels` is false).
    public private(set) var examples: [Example] = []
    /// Lines skipped because their label marks "no gold label" (`-`, empty, null, -1).
    public private(set) var skipped = 0
    /// The field names actually used.
    public private(set) var fields: FieldNames

    /// Reads and validates the whole file. Errors name the file and line.
    public init(url: URL, fields given: FieldNames = FieldNames(), requireLabels: Bool = true) throws {
        self.url = url
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw WinnowError.missingFile(path: path, reason: "no such data file")
        }
        let data = try Data(contentsOf: url, options: .mappedIfSafe)
        fields = given
        var lineNo = 0
        var detected = false
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            lineNo += 1
            var slice = data[start..<end]
            start = end < data.endIndex ? end + 1 : end
            if slice.last == 0x0D { slice = slice.dropLast() }
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard String(data: slice, encoding: .utf8) != nil else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "not valid UTF-8")
            }
            guard let obj = try? JSONSerialization.jsonObject(with: slice), let d = obj as? [String: Any] else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "not a JSON object")
            }
            if !detected {
                try detect(d, path: path, line: lineNo, requireLabels: requireLabels)
                detected = true
            }
            var ex = Example(line: lineNo)
            if let idv = d["id"], !(idv is NSNull) { ex.id = JSONLDataset.scalarString(idv) }
            if let ids = d["input_ids"] {
                guard let arr = ids as? [NSNumber] else {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "input_ids is not a list of integers")
                }
                ex.inputIDs = arr.map { Int32(truncating: $0) }
                if let tt = d["token_type_ids"] as? [NSNumber] {
                    guard tt.count == arr.count else {
                        throw WinnowError.invalidFile(path: path, line: lineNo, reason: "token_type_ids has \(tt.count) entries, input_ids \(arr.count)")
                    }
                    ex.tokenTypeIDs = tt.map { Int32(truncating: $0) }
                }
            } else if let tf = fields.text {
                guard let t = d[tf] else {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "missing text field '\(tf)'")
                }
                guard let s = t as? String else {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "field '\(tf)' is not a string")
                }
                ex.text = s
                if let pf = fields.pair {
                    guard let s2 = d[pf] as? String else {
                        throw WinnowError.invalidFile(path: path, line: lineNo, reason: "missing or non-string pair field '\(pf)'")
                    }
                    ex.pair = s2
                }
            } else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "no text field and no input_ids")
            }
            if let lf = fields.label {
                let v = d[lf]
                if v == nil {
                    if requireLabels { throw WinnowError.invalidFile(path: path, line: lineNo, reason: "missing label field '\(lf)'") }
                } else if JSONLDataset.isNoGoldLabel(v!) {
                    skipped += 1
                    continue
                } else if let s = JSONLDataset.scalarString(v!) {
                    ex.label = s
                } else {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "label is not a string or an integer")
                }
            }
            examples.append(ex)
        }
        if lineNo == 0 || (examples.isEmpty && skipped == 0) {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "the file holds no examples")
        }
    }

    private mutating func detect(_ d: [String: Any], path: String, line: Int, requireLabels: Bool) throws {
        if fields.text == nil && d["input_ids"] == nil {
            fields.text = FieldNames.textCandidates.first { d[$0] != nil }
            if fields.text == nil {
                throw WinnowError.invalidFile(path: path, line: line, reason:
                    "no text field found (looked for \(FieldNames.textCandidates.joined(separator: ", ")) and input_ids; "
                    + "fields here: \(d.keys.sorted().joined(separator: ", ")); use --text-field")
            }
        }
        if fields.pair == nil { fields.pair = FieldNames.pairCandidates.first { d[$0] != nil } }
        if fields.label == nil {
            fields.label = FieldNames.labelCandidates.first { d[$0] != nil }
            if fields.label == nil && requireLabels {
                throw WinnowError.invalidFile(path: path, line: line, reason:
                    "no label field found (looked for label, gold_label); use --label-field")
            }
        }
    }

    static func isNoGoldLabel(_ v: Any) -> Bool {
        if v is NSNull { return true }
        if let s = v as? String { return s.isEmpty || s == "-" }
        if let n = v as? NSNumber { return n.doubleValue == -1 }
        return false
    }

    static func scalarString(_ v: Any) -> String? {
        if let s = v as? String { return s }
        if let n = v as? NSNumber {
            let d = n.doubleValue
            if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
            return n.stringValue
        }
        return nil
    }

    /// Sorted unique labels (numerically when all labels are integers).
    public var sortedLabels: [String] {
        let set = Set(examples.compactMap(\.label))
        if set.allSatisfy({ Int($0) != nil }) { return set.sorted { Int($0)! < Int($1)! } }
        return set.sorted()
    }
}
