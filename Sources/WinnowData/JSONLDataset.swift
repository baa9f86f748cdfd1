import Foundation
import WinnowCore

/// One example as read from a JSONL line, before tokenization.
public struct Example: Sendable {
    /// 1-based line in the input file.
    public var line: Int
    /// The line's `id` field as a string (numbers converted), nil when absent or null.
    public var id: String?
    /// The text field, nil when the line carries `input_ids`.
    public var text: String?
    /// The second text (the pair field), nil when there is none.
    public var pair: String?
    /// The label as written (strings and integers both become strings), or nil.
    public var label: String?
    /// Pre-tokenized ids, when the line carries `input_ids` instead of text.
    public var inputIDs: [Int32]?
    /// The line's `token_type_ids` (0 or 1, one per input id); nil when absent, which means all 0.
    public var tokenTypeIDs: [Int32]?
    /// Which input ids a decoder's loss reads (TRL's `completion_mask` and `assistant_masks`, `winnow
    /// tokenize`'s `scored`, or transformers' `labels` with -100, beside `input_ids`: true for a token the loss
    /// is on); nil when absent, which means every id after the first.
    public var lossMask: [Bool]?
    /// Instruction data for decoders: the prompt and the completion (the loss is on the completion).
    public var prompt: String?, completion: String?
    /// Instruction data for decoders in the chat format: (role, content) per message.
    public var messages: [(role: String, content: String)]?
    /// The messages as the line writes them, every key (`tool_calls`, `reasoning_content`, `name`...) in its order,
    /// and the line's `tools` and `documents`, for the model's chat template; nil when the messages hold only a role and a string
    /// content each and the line has no tools or documents (`messages` is then all). A content that is not a string reads as ""
    /// in `messages`.
    public var chatMessages: ChatMessages?
}

/// Field names used to read a JSONL file (docs/contracts.md §2).
public struct FieldNames: Sendable, Equatable {
    /// Name of the text field; nil picks the first of `text`, `sentence`, `sentence1`, `premise` on the first
    /// example line (not needed when lines carry `input_ids`).
    public var text: String?
    /// Name of the pair field; nil picks `text_pair`, `sentence2` or `hypothesis` if present, else no pair.
    public var pair: String?
    /// Name of the label field; nil picks `label` or `gold_label`.
    public var label: String?

    /// Field names to read; nil ones are detected from the first non-blank line of the file.
    public init(text: String? = nil, pair: String? = nil, label: String? = nil) {
        self.text = text
        self.pair = pair
        self.label = label
    }

    package static let textCandidates = ["text", "sentence", "sentence1", "premise"]
    package static let pairCandidates = ["text_pair", "sentence2", "hypothesis"]
    package static let labelCandidates = ["label", "gold_label"]
}

/// Reads a JSONL data file in chunks, so a caller can stream files of any size with bounded memory.
/// Lines are validated as they are read; errors name the file and line. It reads what `JSONLDataset`
/// reads (text classifier lines, text pairs, `input_ids`, decoder `text`, `prompt`/`completion` and
/// `messages` lines), one chunk at a time, for files too large to hold. Without a text field given, a line
/// holding `messages` or a `prompt` and `completion` besides a text field is read in that instruction form,
/// as TRL reads it. A reader holds an open file: do not copy one and read from both copies.
///
///     var reader = try JSONLReader(url: url, requireLabels: false)
///     while let chunk = try reader.next(upTo: 4096) {
///         for example in chunk { print(example.line, example.label ?? "-") }
///     }
public struct JSONLReader {
    /// The file read.
    public let url: URL
    /// The field names in use: those given, with the rest detected from the first lines.
    public private(set) var fields: FieldNames
    /// Lines skipped so far because their label marks "no gold label" (`-`, empty, null, -1).
    public private(set) var skipped = 0
    /// Of `skipped`, the lines labelled with the number -1 (Hugging Face's "no label"; in some data sets a class).
    public private(set) var skippedMinusOne = 0
    /// Bytes consumed so far (for progress against `fileSize`).
    public private(set) var bytesRead = 0
    /// The file's size in bytes (0 for a pipe).
    public let fileSize: Int
    let requireLabels: Bool
    /// Keep lines whose label marks "no gold label" (their label is nil) instead of skipping them.
    public var keepUnlabelled = false
    private let handle: FileHandle
    private var buffer = Data()
    /// Bytes of `buffer` before this index hold no line break.
    private var scanned = 0
    private var eof = false
    private var lineNo = 0
    private var detected = false
    /// What the first example holds (named when a later one holds text that the detection did not look for).
    private var firstKind = "a prompt or messages"
    /// The caller named the pair field (not detected): refused for examples that have no second text.
    private var pairGiven = false
    /// The caller named the text field (a line without it then lacks that field, whatever else it holds).
    private var textGiven = false
    /// The label field was found after line 1.
    private var lateLabel = false
    private var examplesSeen = 0
    /// The caller named the label field; `labelSeen`: some line holds it (a field no line holds is a typo).
    private var labelGiven = false
    private var labelSeen = false

    /// A reader of `url`; `fields` names the fields to read (the rest are detected from the first lines).
    /// With `requireLabels` every example needs a label (lines whose label marks "no gold label" are
    /// skipped and counted, unless `keepUnlabelled`).
    ///
    /// - Throws: `WinnowError.missingFile` when `url` does not exist; `WinnowError.invalidFile` for a folder,
    ///   a `.csv` file or a file that cannot be opened.
    public init(url: URL, fields: FieldNames = FieldNames(), requireLabels: Bool = true) throws {
        self.url = url
        self.fields = fields
        self.pairGiven = fields.pair != nil
        self.textGiven = fields.text != nil
        self.labelGiven = fields.label != nil
        self.requireLabels = requireLabels
        let path = url.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WinnowError.missingFile(path: path, reason: "no such data file")
        }
        guard !isDir.boolValue else { throw WinnowError.invalidFile(path: path, line: nil, reason: "is a folder, not a JSONL file") }
        if url.pathExtension.lowercased() == "csv" {
            throw WinnowError.invalidFile(path: path, line: nil, reason:
                "is a CSV file where JSONL (one JSON object a line) is read: a text classifier or language model reads JSONL; a CSV of numeric features is for an MLP run")
        }
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw WinnowError.invalidFile(path: path, line: nil, reason: "cannot open for reading")
        }
        handle = h
        fileSize = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
    }

    /// Where a reader stands between lines: enough to reopen the file there (`init(url:resumingAt:)`).
    package struct Position: Sendable {
        let byteOffset: Int, lineNo: Int, examplesSeen: Int, skipped: Int
        let fields: FieldNames, detected: Bool, pairGiven: Bool, lateLabel: Bool, labelGiven: Bool, labelSeen: Bool, textGiven: Bool
    }

    /// The position after the last line read (`next` always stops at a line boundary).
    package var position: Position {
        Position(byteOffset: bytesRead, lineNo: lineNo, examplesSeen: examplesSeen, skipped: skipped, fields: fields, detected: detected, pairGiven: pairGiven, lateLabel: lateLabel,
                 labelGiven: labelGiven, labelSeen: labelSeen, textGiven: textGiven)
    }

    /// A reader of `url` that continues at `p`, the position of an earlier reader of the same file, without
    /// reading or parsing the lines before it.
    package init(url: URL, requireLabels: Bool = true, resumingAt p: Position) throws {
        try self.init(url: url, fields: p.fields, requireLabels: requireLabels)
        do {
            try handle.seek(toOffset: UInt64(p.byteOffset))
        } catch {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "cannot seek to byte \(p.byteOffset): \(error)")
        }
        bytesRead = p.byteOffset
        lineNo = p.lineNo
        examplesSeen = p.examplesSeen
        skipped = p.skipped
        detected = p.detected
        pairGiven = p.pairGiven
        lateLabel = p.lateLabel
        labelGiven = p.labelGiven
        labelSeen = p.labelSeen
        textGiven = p.textGiven
    }

    /// Up to `n` examples, or nil at the end of the file. An empty file is an error.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and line of the first malformed line (not JSON,
    ///   a missing or mistyped field, a label where none can be, ...), for a file without examples, or, at
    ///   its end, when the label field the caller named is on no line (a misspelt field would leave every
    ///   example unlabelled).
    public mutating func next(upTo n: Int) throws -> [Example]? {
        var out: [Example] = []
        while out.count < n, let line = try nextLine() {
            if let ex = try parse(line) { out.append(ex) }
        }
        if out.isEmpty {
            if examplesSeen == 0 && skipped == 0 {
                throw WinnowError.invalidFile(path: url.path, line: nil, reason: "the file holds no examples")
            }
            if labelGiven && !labelSeen, let lf = fields.label {
                throw WinnowError.invalidFile(path: url.path, line: nil, reason: "no line has the label field '\(lf)' that was named")
            }
            return nil
        }
        examplesSeen += out.count
        return out
    }

    /// The next raw line (without its line break), or nil at the end.
    private mutating func nextLine() throws -> Data? {
        while true {
            // Search only the bytes not searched yet, so a very long line costs linear time.
            if let nl = buffer[scanned...].firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<nl]
                bytesRead += line.count + 1
                buffer = buffer[(nl + 1)...]
                scanned = buffer.startIndex
                lineNo += 1
                return Data(line)
            }
            scanned = buffer.endIndex
            if eof {
                guard !buffer.isEmpty else { return nil }
                let line = buffer
                bytesRead += line.count
                buffer = Data()
                scanned = 0
                lineNo += 1
                return Data(line)
            }
            let chunk = try handle.read(upToCount: 1 << 22) ?? Data()
            if chunk.isEmpty {
                eof = true
            } else if buffer.startIndex == 0 {
                buffer.append(chunk)      // indices of the bytes already there do not change
            } else {
                // A Data slice keeps its whole backing store, consumed lines included, and appending
                // to it grows that store: without this copy of the unconsumed tail the buffer would
                // hold the whole file (memory and time growing with the file, not the line).
                let offset = scanned - buffer.startIndex
                var fresh = Data(capacity: buffer.count + chunk.count)
                fresh.append(buffer)
                fresh.append(chunk)
                buffer = fresh
                scanned = offset
            }
        }
    }

    private mutating func parse(_ raw: Data) throws -> Example? {
        let path = url.path
        var slice = raw[...]
        if slice.last == 0x0D { slice = slice.dropLast() }
        if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        guard String(data: slice, encoding: .utf8) != nil else {
            throw WinnowError.invalidFile(path: path, line: lineNo, reason: "not valid UTF-8")
        }
        guard let d = JSONLDataset.object(Data(slice), first: lineNo == 1) else {
            throw WinnowError.invalidFile(path: path, line: lineNo, reason: "not a JSON object")
        }
        if !detected {
            try detect(d, path: path, line: lineNo, requireLabels: requireLabels)
            detected = true
        }
        var ex = Example(line: lineNo)
        if let idv = d["id"], !(idv is NSNull) {
            // Outputs carry the id as written: an object or a list has no such form.
            guard let id = JSONLDataset.scalarString(idv) else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "field 'id' is not a string or a number")
            }
            ex.id = id
        }
        if d["input_ids"] == nil, let key = ["completion_mask", "assistant_masks"].first(where: { d[$0] != nil }) {
            throw WinnowError.invalidFile(path: path, line: lineNo, reason: "holds \(key) but no input_ids: the mask marks input ids (give both)")
        }
        if let ids = d["input_ids"] {
            guard let arr = ids as? [NSNumber], !arr.contains(where: JSONLDataset.isBoolean) else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "input_ids is not a list of integers")
            }
            ex.inputIDs = try arr.map { n in
                guard let v = Int32(exactly: n.doubleValue) else {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "input_ids holds \(n), which is not a 32-bit integer")
                }
                return v
            }
            if let tt = d["token_type_ids"] as? [NSNumber] {
                guard tt.count == arr.count else {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "token_type_ids has \(tt.count) entries, input_ids \(arr.count)")
                }
                ex.tokenTypeIDs = try tt.map { n in
                    guard let v = Int32(exactly: n.doubleValue), v == 0 || v == 1 else {
                        throw WinnowError.invalidFile(path: path, line: lineNo, reason: "token_type_ids holds \(n); expected 0 or 1")
                    }
                    return v
                }
            }
            ex.lossMask = try JSONLReader.lossMask(d, ids: ex.inputIDs!, path: path, line: lineNo)
        } else if fields.text == nil, let m = d["messages"] {
            if pairGiven, let pf = fields.pair { throw JSONLReader.pairRefused(pf, path: path, line: lineNo, kind: "messages") }
            guard let list = m as? [Any], !list.isEmpty else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "messages is not a non-empty list")
            }
            var plain = d["tools"] == nil && d["documents"] == nil
            ex.messages = try list.enumerated().map { i, item in
                guard let o = item as? [String: Any], let role = o["role"] as? String else {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "messages[\(i)] is not an object with a string 'role' and 'content'")
                }
                if o.count != 2 || !(o["content"] is String) { plain = false }
                return (role, o["content"] as? String ?? "")
            }
            // Other keys (tool_calls, reasoning_content...), a content that is null or a list of parts, tools or documents: the
            // messages are read again with every key in the order written, as the chat template is to see them.
            if !plain {
                do { ex.chatMessages = try ChatMessages(jsonLine: slice) } catch {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason: "\(error)")
                }
            }
        } else if fields.text == nil, d["prompt"] != nil || d["completion"] != nil {
            if pairGiven, let pf = fields.pair { throw JSONLReader.pairRefused(pf, path: path, line: lineNo, kind: "a prompt and completion") }
            guard let p = d["prompt"] as? String, let c = d["completion"] as? String else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "prompt and completion must both be strings")
            }
            ex.prompt = p
            ex.completion = c
        } else if let tf = fields.text {
            guard let t = d[tf] else {
                if !textGiven && (d["prompt"] != nil || d["messages"] != nil) {
                    throw WinnowError.invalidFile(path: path, line: lineNo, reason:
                        "holds \(d["prompt"] != nil ? "a prompt" : "messages") but the file's first example is plain text ('\(tf)'): one file holds one kind of example")
                }
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
            } else if let pf = FieldNames.pairCandidates.first(where: { d[$0] is String }) {
                // The pair field is found on the first line; a later line holding one would silently lose it.
                throw WinnowError.invalidFile(path: path, line: lineNo, reason:
                    "has a pair field '\(pf)' but the first example has none, so it would be ignored: give every example one")
            }
        } else {
            throw WinnowError.invalidFile(path: path, line: lineNo, reason: FieldNames.textCandidates.contains(where: { d[$0] != nil })
                ? "holds plain text but the file's first example is \(firstKind): one file holds one kind of example"
                : "no text field and no input_ids")
        }
        if fields.label == nil, let lf = FieldNames.labelCandidates.first(where: { d[$0] != nil && (requireLabels || ($0 != fields.text && $0 != fields.pair)) }),
           JSONLDataset.isNoGoldLabel(d[lf]!) || JSONLDataset.scalarString(d[lf]!) != nil {
            // The first example had no label field: it is taken from the first line that has one (the lines
            // before are unlabelled), not ignored for the rest of the file.
            fields.label = lf
            lateLabel = true
            try checkRoles(path: path, line: lineNo)
        }
        if let lf = fields.label {
            let v = d[lf]
            if v != nil { labelSeen = true }
            if v == nil {
                if requireLabels { throw WinnowError.invalidFile(path: path, line: lineNo, reason: "missing label field '\(lf)'") }
            } else if JSONLDataset.isNoGoldLabel(v!) {
                if keepUnlabelled { return ex }
                skipped += 1
                if v is NSNumber { skippedMinusOne += 1 }
                return nil
            } else if let s = requireLabels ? JSONLDataset.labelString(v!) : JSONLDataset.scalarString(v!) {
                // A classifier's labels are strings or integers; where labels are optional (prediction, a
                // decoder's per-label pruning) any scalar is kept as written (true, 0.8).
                ex.label = s
            } else if !requireLabels && lateLabel {
                // A field met after line 1 whose value is no label (an object, a list): metadata, not a label.
                ex.label = nil
            } else {
                throw WinnowError.invalidFile(path: path, line: lineNo, reason: "label \(JSONLDataset.scalarString(v!).map { "\($0) " } ?? "")is not a string or an integer")
            }
        }
        return ex
    }

    /// A pair field named for an example that is no text pair (the field would be ignored).
    static func pairRefused(_ field: String, path: String, line: Int, kind: String) -> WinnowError {
        .invalidFile(path: path, line: line, reason: "holds \(kind), which has no second text: the pair field '\(field)' applies to plain text examples")
    }

    private mutating func detect(_ d: [String: Any], path: String, line: Int, requireLabels: Bool) throws {
        firstKind = d["input_ids"] != nil ? "input_ids" : d["messages"] != nil ? "messages" : "a prompt and completion"
        if fields.text == nil && d["input_ids"] == nil && d["messages"] == nil && !(d["prompt"] != nil && d["completion"] != nil) {
            fields.text = FieldNames.textCandidates.first { d[$0] != nil }
            if fields.text == nil, (d["prompt"] != nil) != (d["completion"] != nil) {
                throw WinnowError.invalidFile(path: path, line: line, reason:
                    "has a \(d["prompt"] != nil ? "prompt but no completion" : "completion but no prompt"): an instruction example needs both (the loss is on the completion)")
            }
            if fields.text == nil {
                throw WinnowError.invalidFile(path: path, line: line, reason:
                    "no text field found (looked for \(FieldNames.textCandidates.joined(separator: ", ")) and input_ids; "
                    + "fields here: \(d.keys.sorted().joined(separator: ", "))); use --text-field")
            }
        }
        // A second text belongs to text examples: prompt/completion and messages files have none.
        let instruction = d["messages"] != nil || d["prompt"] != nil || d["completion"] != nil
        if fields.pair == nil && (fields.text != nil || !instruction) {
            fields.pair = FieldNames.pairCandidates.first { d[$0] != nil }
        }
        if fields.label == nil {
            // Without a need for labels (tokenize, predict), a field named as the text is the text, not a detected label.
            fields.label = FieldNames.labelCandidates.first { d[$0] != nil && (requireLabels || ($0 != fields.text && $0 != fields.pair)) }
            if fields.label == nil && requireLabels {
                throw WinnowError.invalidFile(path: path, line: line, reason:
                    "no label field found (looked for label, gold_label); use --label-field")
            }
        }
        try checkRoles(path: path, line: line)
    }

    /// Which of `ids` a decoder's loss reads, from the masks beside them: TRL's `completion_mask` and
    /// `assistant_masks` (both applied when both are given, as TRL's collator does), `winnow tokenize`'s
    /// `scored`, and transformers' `labels` (-100 where the loss skips, else the id itself). 0/1 or
    /// true/false. Nil when the line has none. A `scored` that is not a list is some other field, not a mask.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the line and key of a mask of another length or value.
    static func lossMask(_ d: [String: Any], ids: [Int32], path: String, line: Int) throws -> [Bool]? {
        func fail(_ why: String) -> WinnowError { .invalidFile(path: path, line: line, reason: why) }
        var mask: [Bool]?
        func combine(_ m: [Bool]) { mask = mask.map { zip($0, m).map { $0 && $1 } } ?? m }
        for key in JSONLDataset.lossMaskKeys {
            guard let v = d[key], key != "labels" || v is [Any] else { continue }
            if key == "scored" && !(v is [Any]) { continue }
            guard let list = v as? [NSNumber] else { throw fail("\(key) is not a list of \(key == "labels" ? "integers" : "0 and 1")") }
            guard list.count == ids.count else { throw fail("\(key) has \(list.count) entries, input_ids \(ids.count)") }
            combine(try list.enumerated().map { j, n in
                if key == "labels" {
                    guard !JSONLDataset.isBoolean(n), let x = Int32(exactly: n.doubleValue) else { throw fail("labels[\(j)] is \(n), not an integer") }
                    guard x == -100 || x == ids[j] else {
                        throw fail("labels[\(j)] is \(x), neither -100 nor input_ids[\(j)] (\(ids[j])): a language model's labels are its own ids, -100 where the loss skips")
                    }
                    return x != -100
                }
                if JSONLDataset.isBoolean(n) { return n.boolValue }
                guard n.doubleValue == 0 || n.doubleValue == 1 else { throw fail("\(key) holds \(n); expected 0 or 1") }
                return n.doubleValue == 1
            })
        }
        return mask
    }

    /// The label read as the text (or second text) would give the model its answer: refused, detected or named.
    private func checkRoles(path: String, line: Int) throws {
        guard let l = fields.label else { return }
        for (role, f) in [("text", fields.text), ("second text", fields.pair)] where f == l {
            throw WinnowError.invalidFile(path: path, line: line, reason:
                "the field '\(l)' would be both the label and the \(role): the model would read its answer; name another with --\(role == "text" ? "text" : "pair")-field or --label-field")
        }
    }

}

/// A JSONL data file read whole: one example a line (text, optional pair, label, optional id).
///
///     let data = try JSONLDataset(url: URL(fileURLWithPath: "data/rotten-tomatoes/train.jsonl"))
///     print(data.examples.count, data.skipped)
public struct JSONLDataset: Sendable {
    /// Fields beside `input_ids` that mark the ids a decoder's loss reads (TRL's two, `winnow tokenize`'s,
    /// and transformers' `labels` with -100).
    package static let lossMaskKeys = ["completion_mask", "assistant_masks", "scored", "labels"]
    /// The file read.
    public let url: URL
    /// Examples with a usable label (or all examples when `requireLabels` is false).
    public private(set) var examples: [Example] = []
    /// Lines skipped because their label marks "no gold label" (`-`, empty, null, -1).
    public private(set) var skipped = 0
    /// Of `skipped`, the lines labelled with the number -1.
    public private(set) var skippedMinusOne = 0
    /// The field names actually used.
    public private(set) var fields: FieldNames

    /// Reads and validates the whole file. Errors name the file and line. With `keepUnlabelled` (and
    /// `requireLabels` false), examples marked "no gold label" are kept, without a label, not skipped.
    public init(url: URL, fields given: FieldNames = FieldNames(), requireLabels: Bool = true, keepUnlabelled: Bool = false) throws {
        self.url = url
        var reader = try JSONLReader(url: url, fields: given, requireLabels: requireLabels)
        reader.keepUnlabelled = keepUnlabelled && !requireLabels
        while let chunk = try reader.next(upTo: 1 << 16) { examples += chunk }
        skipped = reader.skipped
        skippedMinusOne = reader.skippedMinusOne
        fields = reader.fields
    }

    /// The JSON object of one line. A byte-order mark before the object of a file's `first` line is
    /// skipped; U+FEFF inside a string is kept: Foundation's parser on Linux drops it where a run of raw
    /// characters starts (a string's start, after an escape), so it is passed to the parser escaped.
    package static func object(_ line: Data, first: Bool = false) -> [String: Any]? {
        let bom = Data([0xEF, 0xBB, 0xBF])
        var d = first && line.starts(with: bom) ? Data(line.dropFirst(3)) : line
        if d.range(of: bom) != nil {
            var out = Data(capacity: d.count + 8)
            var i = d.startIndex
            while i < d.endIndex {
                if d[i] == 0xEF, i + 2 < d.endIndex, d[i + 1] == 0xBB, d[i + 2] == 0xBF {
                    out.append(contentsOf: Array("\\ufeff".utf8)); i += 3
                } else {
                    out.append(d[i]); i += 1
                }
            }
            d = out
        }
        return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
    }

    /// A warning when the number -1 labels 5 % or more of the `total` lines of `path` (SNLI's no-label rows are a
    /// fraction of a percent; -1/0/1 sentiment labels are a class each): those lines are read as "no gold
    /// label" and left out. Nil otherwise.
    package static func minusOneWarning(_ minusOne: Int, of total: Int, path: String) -> String? {
        guard minusOne > 0, minusOne * 20 >= total else { return nil }
        return "warning: \(minusOne) of the \(total) examples of \(path) are labelled -1, read as \"no gold label\" "
            + "(Hugging Face's convention) and left out; if -1 is a class, write the labels as strings (\"-1\") or shift them"
    }

    static func isNoGoldLabel(_ v: Any) -> Bool {
        if v is NSNull { return true }
        if let s = v as? String { return s.isEmpty || s == "-" }
        if let n = v as? NSNumber { return n.doubleValue == -1 }
        return false
    }

    /// A JSON scalar as text: a string as it is, an integer-valued number as the integer, another number
    /// as Foundation writes it, a boolean as `true` / `false`; nil for null, lists and objects.
    package static func scalarString(_ v: Any) -> String? {
        if let s = v as? String { return s }
        if let n = v as? NSNumber {
            if isBoolean(n) { return n.boolValue ? "true" : "false" }
            let d = n.doubleValue
            if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
            return n.stringValue
        }
        return nil
    }

    /// Whether a number Foundation parsed was a JSON `true` / `false`.
    package static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    /// A label as the data sets write them (docs/contracts.md §2): a string, or an integer (1.0 reads as 1);
    /// nil for booleans, other numbers, lists and objects.
    package static func labelString(_ v: Any) -> String? {
        if let s = v as? String { return s }
        guard let n = v as? NSNumber, !isBoolean(n) else { return nil }
        let d = n.doubleValue
        return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : nil
    }

    /// Sorted unique labels (numerically when all labels are integers).
    public var sortedLabels: [String] {
        let set = Set(examples.compactMap(\.label))
        if set.allSatisfy({ Int($0) != nil }) { return set.sorted { Int($0)! < Int($1)! } }
        return set.sorted()
    }
}

/// One field of chosen lines of a JSONL file, as strings (integers written out).
public enum JSONLField {
    /// The 1-based numbers of the lines that are not blank.
    public static func exampleLines(_ url: URL) throws -> [Int] {
        let file = try LineFile(url: url)
        return (1...max(1, file.count)).filter { $0 <= file.count && !file.text($0).allSatisfy { $0 == " " || $0 == "\t" } }
    }

    /// The value of `field` on each of `lines` (1-based), in that order.
    ///
    /// - Throws: `WinnowError.invalidFile` naming the file and line where the field is missing or is not
    ///   a string or a number.
    public static func strings(_ field: String, in url: URL, lines: [Int]) throws -> [String] {
        let file = try LineFile(url: url)
        var value: [Int: String] = [:]
        for line in Set(lines).sorted() {   // the first bad line is the one named
            guard line >= 1, line <= file.count,
                  let d = JSONLDataset.object(Data(file.text(line).utf8), first: line == 1) else {
                throw WinnowError.invalidFile(path: url.path, line: line, reason: "not a JSON object")
            }
            guard let v = d[field], let s = JSONLDataset.scalarString(v) else {
                throw WinnowError.invalidFile(path: url.path, line: line, reason: "no string or number field '\(field)'")
            }
            value[line] = s
        }
        return lines.map { value[$0]! }
    }
}
