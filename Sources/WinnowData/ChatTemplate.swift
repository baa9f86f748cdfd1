import Foundation
import WinnowCore

/// A model's chat template (a Jinja source, as Hugging Face stores it), rendered as transformers'
/// `apply_chat_template` renders it: Jinja with `trim_blocks` and `lstrip_blocks`, the `generation` block
/// and loop controls, `raise_exception`, `strftime_now`, `namespace` and a `tojson` that writes JSON as
/// Python's `json.dumps`. The subset of Jinja chat templates use is implemented (statements `if`, `for`,
/// `set`, `macro`, `filter`, `with`, `generation`, `break`, `continue`; Python-style expressions, tests, filters and
/// string methods; Jinja's generators and Markup);
/// anything else is refused when the template is read or rendered, naming the line, never guessed.
///
///     let t = try ChatTemplate(source: "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}")
///     try t.render(messages: [("user", "hi")], addGenerationPrompt: false)     // "user: hi\n"
public struct ChatTemplate: Sendable {
    /// Why a template cannot be read or rendered: the message and the 1-based template line.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What is wrong, or what the template raised.
        public let message: String
        /// The 1-based line of the template.
        public let line: Int
        /// "chat template line N: MESSAGE".
        public var description: String { "chat template line \(line): \(message)" }
    }

    private let body: [Node]

    /// Parses `source`.
    ///
    /// - Throws: `ChatTemplate.Failure` naming the line of a construct Winnow does not read or a syntax error.
    public init(source: String) throws {
        var p = Parser(tokens: try Lexer.tokens(source))
        body = try p.parseBody(until: [])
    }

    /// The text the template writes for `messages`, with the special tokens' spellings (`bos_token`,
    /// `eos_token`, ...) and `add_generation_prompt`; `now` is what `strftime_now` reads.
    ///
    /// - Throws: `ChatTemplate.Failure` when the template raises an exception (`raise_exception`) or uses
    ///   something Winnow does not implement.
    public func render(messages: [(role: String, content: String)], addGenerationPrompt: Bool,
                       specialTokens: [String: String] = [:], now: Date = Date()) throws -> String {
        try render(ChatMessages(messages), addGenerationPrompt: addGenerationPrompt, specialTokens: specialTokens, now: now)
    }

    /// The text the template writes for `conversation` (messages with every key they carry, and the tools), as
    /// `render(messages:addGenerationPrompt:specialTokens:now:)`.
    public func render(_ conversation: ChatMessages, addGenerationPrompt: Bool,
                       specialTokens: [String: String] = [:], now: Date = Date()) throws -> String {
        var ctx = Context(now: now)
        // transformers passes tools and documents always (None without them), so `tools is defined` holds.
        var globals: [String: Value] = ["add_generation_prompt": .bool(addGenerationPrompt), "tools": conversation.tools,
                                        "documents": conversation.documents]
        globals["messages"] = .list(conversation.messages)
        for (k, v) in specialTokens { globals[k] = .string(v) }
        ctx.scopes = [globals]
        var out = ""
        _ = try ctx.run(body, into: &out)
        return out
    }
}

extension ChatTemplate {
    /// Python's `str.isspace` (what `strip`, `split` and Jinja's `trim` remove): Unicode's White_Space and the
    /// separators U+001C-U+001F.
    public static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace || (0x1C...0x1F).contains(c.value) }
}

// MARK: - Messages

/// A conversation as a chat template reads it: the messages, each a JSON object with every key it carries
/// (`role` and `content`, and `tool_calls`, `reasoning_content`, `name`...; a content may be null or a list of
/// parts), in the order written, normalised as transformers' `apply_chat_template` does (keys whose value is null
/// dropped; the reasoning also under `thinking` and `reasoning_content`), the tools the conversation may call (`tools`,
/// as TRL passes a data set's `tools` column to `apply_chat_template`) and the documents it may cite (`documents`, as
/// retrieval-augmented templates such as Granite's and Command R's read them).
public struct ChatMessages: Sendable {
    let messages: [Value]
    let tools: Value
    let documents: Value

    /// Messages of a role and a string content each, and no tools or documents.
    public init(_ messages: [(role: String, content: String)]) {
        self.messages = messages.map { .dict([("role", .string($0.role)), ("content", .string($0.content))]) }
        tools = .none
        documents = .none
    }

    init(messages: [Value], tools: Value, documents: Value) {
        self.messages = messages
        self.tools = tools
        self.documents = documents
    }

    /// The `messages` and `tools` of a JSON object (a JSONL line), keys and values in the order written.
    ///
    /// - Throws: `ChatMessages.Failure` naming what is wrong: not a JSON object, `messages` not a non-empty list
    ///   of objects with a string `role` and a `content` (if any) that is a string, null or a list, `tools` not a list
    ///   (or null), an integer beyond a signed 64-bit one, nesting deeper than 60.
    public init(jsonLine bytes: some Collection<UInt8>) throws {
        var reader = OrderedJSON(bytes: Array(bytes))
        guard case .dict(let line) = try reader.document() else { throw Failure(message: "not a JSON object") }
        // A key written twice: the last value stands, as Python's json reads it.
        guard case .list(let list)? = line.last(where: { $0.0 == "messages" })?.1, !list.isEmpty else {
            throw Failure(message: "messages is not a non-empty list")
        }
        for (i, m) in list.enumerated() {
            guard case .dict(let keys) = m, case .string? = keys.last(where: { $0.0 == "role" })?.1 else {
                throw Failure(message: "messages[\(i)] is not an object with a string 'role'")
            }
            switch keys.last(where: { $0.0 == "content" })?.1 {
            case nil, .string?, .none?, .list?: break     // no content: as null, which apply_chat_template drops
            default: throw Failure(message: "messages[\(i)]: 'content' is not a string, null or a list of parts")
            }
        }
        // As apply_chat_template: a message's keys whose value is null dropped (many templates handle a missing
        // content or tool_calls, not a None), then the reasoning aliased.
        messages = list.map { m in
            guard case .dict(let keys) = m else { return m }
            return Self.aliasingReasoning(.dict(keys.filter { if case .none = $0.1 { false } else { true } }))
        }
        func objects(_ key: String, _ what: String) throws -> Value {
            switch line.last(where: { $0.0 == key })?.1 {
            case nil, .none?: return .none
            case .list(let t)?:
                if let k = t.firstIndex(where: { if case .dict = $0 { false } else { true } }) { throw Failure(message: "\(key)[\(k)] is not an object (\(what))") }
                return .list(t)
            default: throw Failure(message: "\(key) is not a list")
            }
        }
        tools = try objects("tools", "a JSON schema")
        documents = try objects("documents", "a document")
    }

    /// transformers' `_alias_reasoning_fields`: a message's reasoning (the first of `reasoning_content`, `thinking`
    /// and `reasoning` that is not null) under `thinking` (first, unless the message has it) and `reasoning_content`
    /// (last, unless the message has it) too, for templates that read either.
    static func aliasingReasoning(_ m: Value) -> Value {
        guard case .dict(var keys) = m else { return m }
        let found = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap { name -> Value? in
            guard let v = keys.first(where: { $0.0 == name })?.1 else { return nil }
            if case .none = v { return nil }
            return v
        }.first
        guard let reasoning = found else { return m }
        if !keys.contains(where: { $0.0 == "thinking" }) { keys.insert(("thinking", reasoning), at: 0) }
        if let k = keys.firstIndex(where: { $0.0 == "reasoning_content" }) { keys[k].1 = reasoning } else { keys.append(("reasoning_content", reasoning)) }
        return .dict(keys)
    }

    /// Why a line's messages cannot be read.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What is wrong.
        public let message: String
        public var description: String { message }
    }

    /// The number of messages.
    public var count: Int { messages.count }

    /// Each message's role.
    public var roles: [String] {
        messages.map { m in
            guard case .dict(let keys) = m, case .string(let r)? = keys.last(where: { $0.0 == "role" })?.1 else { return "" }
            return r
        }
    }

    /// The first `n` messages, with the same tools and documents.
    public func prefix(_ n: Int) -> ChatMessages { ChatMessages(messages: Array(messages.prefix(n)), tools: tools, documents: documents) }
}

/// A JSON document read into template values with object keys in the order written (Python's `json.loads`
/// keeps them so, and `tojson` writes them back so): integers as `int` (refused beyond a signed 64-bit one, which Python would take), other numbers
/// as `double`, a key written twice keeping its first place and its last value, a lone surrogate escape read as
/// U+FFFD, nesting refused past 60 (the templates' values nest at most 64).
struct OrderedJSON {
    let bytes: [UInt8]
    var i = 0
    static let maxDepth = 60

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws -> Value {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        skipSpace()
        let v = try value(depth: 0)
        skipSpace()
        guard i == bytes.count else { throw ChatMessages.Failure(message: "not a JSON object (text after its end)") }
        return v
    }

    private func fail(_ what: String) -> ChatMessages.Failure { ChatMessages.Failure(message: "not valid JSON (\(what) at byte \(i + 1))") }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
    }

    private mutating func value(depth: Int) throws -> Value {
        guard depth <= Self.maxDepth else { throw ChatMessages.Failure(message: "lists and objects nest more than \(Self.maxDepth) deep") }
        guard i < bytes.count else { throw fail("the end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var out: [(String, Value)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .dict(out) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("a key expected") }
                let key = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("':' expected") }
                i += 1
                skipSpace()
                let v = try value(depth: depth + 1)
                if let k = out.firstIndex(where: { $0.0 == key }) { out[k].1 = v } else { out.append((key, v)) }
                if try !another(closedBy: "}") { return .dict(out) }
            }
        case UInt8(ascii: "["):
            i += 1
            var out: [Value] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .list(out) }
            while true {
                skipSpace()
                out.append(try value(depth: depth + 1))
                if try !another(closedBy: "]") { return .list(out) }
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .none)
        default: return try number()
        }
    }

    /// After an item of an object or a list: true past a ',' (another item follows), false past `close`.
    private mutating func another(closedBy close: Unicode.Scalar) throws -> Bool {
        skipSpace()
        guard i < bytes.count else { throw fail("the end") }
        if bytes[i] == UInt8(ascii: ",") { i += 1; return true }
        guard bytes[i] == UInt8(ascii: close) else { throw fail("',' or '\(close)' expected") }
        i += 1
        return false
    }

    private mutating func literal(_ word: String, _ v: Value) throws -> Value {
        let w = Array(word.utf8)
        guard bytes[i...].starts(with: w) else { throw fail("unexpected '\(Character(Unicode.Scalar(bytes[i])))'") }
        i += w.count
        return v
    }

    private mutating func number() throws -> Value {
        let start = i
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int { let s = i; while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }; return i - s }
        let intDigits = digits()
        guard intDigits > 0, !(intDigits > 1 && bytes[i - intDigits] == 0x30) else { throw fail("not a value") }
        var integral = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1; integral = false
            guard digits() > 0 else { throw fail("digits expected after '.'") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1; integral = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("digits expected in the exponent") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if integral {
            guard let n = Int(text) else { throw ChatMessages.Failure(message: "the integer \(text) is beyond a signed 64-bit integer") }
            return .int(n)
        }
        guard let d = Double(text), d.isFinite else { throw ChatMessages.Failure(message: "the number \(text) is beyond a double") }
        return .double(d)
    }

    private mutating func string() throws -> String {
        guard let s = JSONText.string(bytes, &i) else { throw fail("a malformed string") }
        return s
    }
}

// MARK: - Values

/// A template value, with Python's and Jinja's semantics where the templates rely on them.
indirect enum Value: Sendable {
    case undefined, none
    case bool(Bool), int(Int), double(Double), string(String)
    case list([Value])
    /// Keys in insertion order (as a Python dict).
    case dict([(String, Value)])
    /// A `namespace()` object: mutable attributes through `set ns.attr = ...`.
    case namespace(Int)
    /// A function the environment provides (`raise_exception`, `strftime_now`, ...), or a macro the template defines.
    case function(String)
    case macro(Int)
    /// What Jinja's `map`, `select`, `reject`, `selectattr` and `rejectattr` give: a Python generator, which loops
    /// and filters read as its items, which is always true, and which `tojson`, `length` and printing cannot read.
    case generator([Value])

    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): !d.isEmpty
        case .namespace, .function, .macro, .generator: true
        }
    }

    /// Whether a generator is in `self` (which `json.dumps` cannot write).
    var holdsGenerator: Bool {
        switch self {
        case .generator: true
        case .list(let l): l.contains { $0.holdsGenerator }
        case .dict(let d): d.contains { $0.1.holdsGenerator }
        default: false
        }
    }

    /// `{{ value }}` / `str(value)`: Python's spelling.
    var text: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : String(d)
        case .string(let s): s
        case .list(let l): "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): "{" + d.map { PyStr.repr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        case .namespace: "<Namespace>"
        case .function(let n): "<function \(n)>"
        case .macro: "<Macro>"
        case .generator: "<generator object>"
        }
    }

    /// Python's `repr`.
    var repr: String {
        if case .string(let s) = self { return PyStr.repr(s) }
        return text
    }

    /// Python's `json.dumps` options as transformers' `tojson` passes them.
    struct JSONOptions {
        var indent: Int? = nil
        var sortKeys = false
        /// Non-ASCII written as \uXXXX escapes (surrogate pairs above U+FFFF).
        var ensureASCII = false
        /// (item, key) separators; nil: json.dumps' defaults (", " or "," with an indent, and ": ").
        var separators: (String, String)? = nil
    }

    /// Python's `json.dumps` with `options`.
    func json(_ o: JSONOptions, level: Int = 0) -> String {
        func str(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{8}": out += "\\b"
                case "\u{C}": out += "\\f"
                default:
                    if u.value < 0x20 || (o.ensureASCII && u.value > 0x7E) {
                        if u.value > 0xFFFF {
                            let v = u.value - 0x10000
                            out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                        } else if u.value == 0x7F {
                            out.unicodeScalars.append(u)
                        } else {
                            out += String(format: "\\u%04x", u.value)
                        }
                    } else {
                        out.unicodeScalars.append(u)
                    }
                }
            }
            return out + "\""
        }
        let width = max(0, o.indent ?? 0)
        let pad = o.indent.map { _ in "\n" + String(repeating: " ", count: width * (level + 1)) }
        let close = o.indent.map { _ in "\n" + String(repeating: " ", count: width * level) } ?? ""
        let sep = o.separators?.0 ?? (o.indent == nil ? ", " : ","), colon = o.separators?.1 ?? ": "
        switch self {
        case .undefined, .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .double(let d) where !d.isFinite: return d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity"
        case .int, .double: return text
        case .string(let s): return str(s)
        case .list(let l):
            guard !l.isEmpty else { return "[]" }
            return "[" + l.map { (pad ?? "") + $0.json(o, level: level + 1) }.joined(separator: sep) + close + "]"
        case .dict(let d):
            guard !d.isEmpty else { return "{}" }
            let items = o.sortKeys ? d.sorted { PyStr.less($0.0, $1.0) } : d
            return "{" + items.map { (pad ?? "") + str($0.0) + colon + $0.1.json(o, level: level + 1) }.joined(separator: sep) + close + "}"
        case .namespace, .function, .macro, .generator: return "{}"
        }
    }

    func equals(_ o: Value) -> Bool {
        switch (self, o) {
        case (.undefined, .undefined), (.none, .none): true
        case let (.bool(a), .bool(b)): a == b
        case let (.string(a), .string(b)): a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.list(a), .list(b)): a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case let (.dict(a), .dict(b)): a.count == b.count && a.allSatisfy { k, v in b.contains { $0.0 == k && $0.1.equals(v) } }
        default:
            if let x = number, let y = o.number { x == y } else { false }
        }
    }

    /// The value as a number (booleans count, as in Python).
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }
}

// MARK: - Lexer

private enum Token: Equatable {
    case text(String)
    case exprOpen, exprClose, stmtOpen, stmtClose
    case name(String), string(String), int(Int), double(Double), op(String)
}

private struct LexedToken { let token: Token; let line: Int }

private enum Lexer {
    /// The template as text and tag tokens, whitespace control applied: `-` strips whitespace beside a tag,
    /// `trim_blocks` the first line break after a statement or comment, `lstrip_blocks` the spaces and tabs
    /// before one at the start of a line.
    static func tokens(_ source: String) throws -> [LexedToken] {
        // Jinja reads "\r\n" and "\r" as "\n", and drops one line break at the very end (keep_trailing_newline false).
        var s = Array(source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n").unicodeScalars)
        if s.last == "\n" { s.removeLast() }
        var out: [LexedToken] = []
        var i = 0, line = 1, text: [Unicode.Scalar] = []
        var textLine = 1
        func flushText() {
            if !text.isEmpty { out.append(LexedToken(token: .text(String(String.UnicodeScalarView(text))), line: textLine)) }
            text = []
        }
        func fail(_ m: String) -> ChatTemplate.Failure { ChatTemplate.Failure(message: m, line: line) }
        while i < s.count {
            let c = s[i]
            guard c == "{", i + 1 < s.count, ["{", "%", "#"].contains(s[i + 1]) else {
                if text.isEmpty { textLine = line }
                if c == "\n" { line += 1 }
                text.append(c); i += 1
                continue
            }
            let kind = s[i + 1]
            var j = i + 2
            let stripBefore = j < s.count && s[j] == "-"
            let keepBefore = j < s.count && s[j] == "+"
            if stripBefore || keepBefore { j += 1 }
            if stripBefore {
                while let l = text.last, l.properties.isWhitespace { text.removeLast() }
            } else if kind != "{" && !keepBefore {
                // lstrip_blocks: the spaces and tabs between the start of the line (in the source) and the tag.
                var k = i
                while k > 0, s[k - 1] == " " || s[k - 1] == "\t" { k -= 1 }
                if k == 0 || s[k - 1] == "\n" {
                    var n = i - k
                    while n > 0, let l = text.last, l == " " || l == "\t" { text.removeLast(); n -= 1 }
                }
            }
            flushText()
            let closeMark: Unicode.Scalar = kind == "{" ? "}" : kind == "%" ? "%" : "#"
            if kind == "#" {
                // A comment: skip to #}.
                var k = j
                while k + 1 < s.count, !(s[k] == "#" && s[k + 1] == "}") { if s[k] == "\n" { line += 1 }; k += 1 }
                guard k + 1 < s.count else { throw fail("a comment is not closed with #}") }
                let stripAfter = k > j && s[k - 1] == "-"
                i = k + 2
                i = skipAfter(s, i, strip: stripAfter, trimBlock: true, line: &line)
                continue
            }
            out.append(LexedToken(token: kind == "{" ? .exprOpen : .stmtOpen, line: line))
            // Tokens inside the tag up to its close (a "}}" closing a dict literal inside it is not the close).
            var k = j
            var braces = 0
            while true {
                while k < s.count, s[k].properties.isWhitespace { if s[k] == "\n" { line += 1 }; k += 1 }
                guard k < s.count else { throw fail("a tag is not closed") }
                let ch = s[k]
                // The close: -}} / }} or -%} / %}.
                if ch == "-" || ch == "+", k + 2 < s.count, s[k + 1] == closeMark, s[k + 2] == "}" {
                    out.append(LexedToken(token: kind == "{" ? .exprClose : .stmtClose, line: line))
                    i = skipAfter(s, k + 3, strip: ch == "-", trimBlock: kind == "%" && ch != "+", line: &line)
                    break
                }
                if ch == closeMark, k + 1 < s.count, s[k + 1] == "}", braces == 0 || kind != "{" {
                    out.append(LexedToken(token: kind == "{" ? .exprClose : .stmtClose, line: line))
                    i = skipAfter(s, k + 2, strip: false, trimBlock: kind == "%", line: &line)
                    break
                }
                if ch == "'" || ch == "\"" {
                    var v = String.UnicodeScalarView()
                    var m = k + 1
                    while m < s.count, s[m] != ch {
                        if s[m] == "\\", m + 1 < s.count {
                            m += 1
                            switch s[m] {
                            case "n": v.append("\n")
                            case "t": v.append("\t")
                            case "r": v.append("\r")
                            case "\\": v.append("\\")
                            case "'": v.append("'")
                            case "\"": v.append("\"")
                            case "\n": line += 1
                            case "u", "x", "U":
                                // \xHH, \uHHHH, \UHHHHHHHH as Python reads them.
                                let n = s[m] == "x" ? 2 : s[m] == "u" ? 4 : 8
                                guard m + n < s.count, let u = UInt32(String(String.UnicodeScalarView(s[(m + 1)...(m + n)])), radix: 16).flatMap(Unicode.Scalar.init) else {
                                    throw fail("a \\\(s[m]) escape is not \(n) hex digits of a character")
                                }
                                v.append(u); m += n
                            case "0"..."7":
                                // Octal, up to three digits.
                                var k = m, code: UInt32 = 0
                                while k < s.count, k < m + 3, ("0"..."7").contains(s[k]) { code = code * 8 + (s[k].value - 48); k += 1 }
                                v.append(Unicode.Scalar(code)!); m = k - 1
                            case "a": v.append("\u{7}")
                            case "b": v.append("\u{8}")
                            case "f": v.append("\u{C}")
                            case "v": v.append("\u{B}")
                            default: v.append("\\"); v.append(s[m])
                            }
                        } else {
                            if s[m] == "\n" { line += 1 }
                            v.append(s[m])
                        }
                        m += 1
                    }
                    guard m < s.count else { throw fail("a string is not closed") }
                    out.append(LexedToken(token: .string(String(v)), line: line))
                    k = m + 1
                    continue
                }
                if ch.properties.numericType != nil && ch.isASCII {
                    var m = k
                    while m < s.count, s[m].isASCII, s[m].properties.numericType != nil || s[m] == "_" { m += 1 }
                    var isFloat = false
                    if m + 1 < s.count, s[m] == ".", s[m + 1].isASCII, s[m + 1].properties.numericType != nil {
                        isFloat = true; m += 1
                        while m < s.count, s[m].isASCII, s[m].properties.numericType != nil { m += 1 }
                    }
                    // An exponent: 1e3, 2.5E-4.
                    if m < s.count, s[m] == "e" || s[m] == "E" {
                        var e = m + 1
                        if e < s.count, s[e] == "+" || s[e] == "-" { e += 1 }
                        if e < s.count, s[e].isASCII, s[e].properties.numericType != nil {
                            while e < s.count, s[e].isASCII, s[e].properties.numericType != nil { e += 1 }
                            isFloat = true; m = e
                        }
                    }
                    let lit = String(String.UnicodeScalarView(s[k..<m])).replacingOccurrences(of: "_", with: "")
                    if isFloat { out.append(LexedToken(token: .double(Double(lit) ?? 0), line: line)) } else {
                        guard let n = Int(lit) else { throw fail("the number \(lit) is too large") }
                        out.append(LexedToken(token: .int(n), line: line))
                    }
                    k = m
                    continue
                }
                if ch == "_" || ch.properties.isAlphabetic {
                    var m = k
                    while m < s.count, s[m] == "_" || s[m].properties.isAlphabetic || (s[m].isASCII && s[m].properties.numericType != nil) { m += 1 }
                    out.append(LexedToken(token: .name(String(String.UnicodeScalarView(s[k..<m]))), line: line))
                    k = m
                    continue
                }
                let two = k + 1 < s.count ? String(String.UnicodeScalarView([ch, s[k + 1]])) : ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                    out.append(LexedToken(token: .op(two), line: line)); k += 2; continue
                }
                guard "()[]{},.:|+-*/%~<>=!".unicodeScalars.contains(ch) else { throw fail("unexpected character '\(ch)' in a tag") }
                if ch == "{" { braces += 1 } else if ch == "}" { braces = max(0, braces - 1) }
                out.append(LexedToken(token: .op(String(ch)), line: line))
                k += 1
            }
        }
        flushText()
        return out
    }

    /// Past a tag's close: whitespace stripped (`-`), or the first line break removed (trim_blocks).
    private static func skipAfter(_ s: [Unicode.Scalar], _ start: Int, strip: Bool, trimBlock: Bool, line: inout Int) -> Int {
        var i = start
        if strip {
            while i < s.count, s[i].properties.isWhitespace { if s[i] == "\n" { line += 1 }; i += 1 }
        } else if trimBlock {
            if i < s.count, s[i] == "\n" { line += 1; i += 1 } else if i + 1 < s.count, s[i] == "\r", s[i + 1] == "\n" { line += 1; i += 2 }
        }
        return i
    }
}

// MARK: - Syntax

private indirect enum Expr: Sendable {
    case literal(Value)
    case name(String)
    case list([Expr])
    case dict([(Expr, Expr)])
    case attr(Expr, String)
    case index(Expr, Expr)
    case slice(Expr, Expr?, Expr?, Expr?)
    case call(Expr, [Expr], [(String, Expr)])
    case filter(Expr, String, [Expr], [(String, Expr)])
    case test(Expr, String, [Expr], negated: Bool)
    case unary(String, Expr)
    case binary(String, Expr, Expr)
    case ternary(Expr, Expr, Expr?)
}

/// A filter as a block names it: the filter, its arguments and keyword arguments.
private typealias FilterCall = (name: String, args: [Expr], kwargs: [(String, Expr)])

private enum Node: Sendable {
    case text(String)
    case output(Expr, line: Int)
    case ifChain([(Expr?, [Node])], line: Int)
    case forLoop(targets: [String], iterable: Expr, filter: Expr?, body: [Node], orElse: [Node], line: Int)
    case set(target: String, attr: String?, value: Expr, line: Int)
    /// `{% set x %}...{% endset %}`, through `filters` when given (`{% set x | trim %}`).
    case setBlock(target: String, filters: [FilterCall], body: [Node], line: Int)
    /// `{% filter f | g(...) %}...{% endfilter %}`: the body's text through the filters.
    case filterBlock(filters: [FilterCall], body: [Node], line: Int)
    /// `{% with a = x, b = y %}...{% endwith %}`: the body in a scope of its own holding the names.
    case with([(String, Expr)], body: [Node], line: Int)
    case generation([Node])
    case macro(name: String, params: [(String, Expr?)], body: [Node])
    case breakLoop, continueLoop
}

private struct Parser {
    let tokens: [LexedToken]
    var i = 0
    /// Nesting of statements and expressions, and operations in one tag, bounded so that a hostile template
    /// cannot exhaust the stack (a chain of 20,000 `+` is a tree 20,000 deep).
    var depth = 0, ops = 0
    static let maxDepth = 200, maxOps = 400

    mutating func op() throws {
        ops += 1
        guard ops <= Self.maxOps else { throw fail("more than \(Self.maxOps) operations in one tag") }
    }

    init(tokens: [LexedToken]) { self.tokens = tokens }

    var line: Int { i < tokens.count ? tokens[i].line : (tokens.last?.line ?? 1) }
    func fail(_ m: String) -> ChatTemplate.Failure { ChatTemplate.Failure(message: m, line: line) }
    func peek(_ k: Int = 0) -> Token? { i + k < tokens.count ? tokens[i + k].token : nil }
    mutating func next() -> Token? { defer { i += 1 }; return peek() }
    mutating func expect(_ t: Token, _ what: String) throws { guard next() == t else { i -= 1; throw fail("expected \(what)") } }
    func isName(_ n: String, _ k: Int = 0) -> Bool { peek(k) == .name(n) }
    func isOp(_ o: String) -> Bool { peek() == .op(o) }

    /// Nodes up to a statement whose keyword is in `ends` (left unconsumed: the caller reads it).
    mutating func parseBody(until ends: Set<String>) throws -> [Node] {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw fail("statements nested more than \(Self.maxDepth) deep") }
        var nodes: [Node] = []
        while let t = peek() {
            switch t {
            case .text(let s): i += 1; nodes.append(.text(s))
            case .exprOpen:
                let l = line
                i += 1
                ops = 0
                let e = try parseExpr()
                try expect(.exprClose, "}} to close the expression")
                nodes.append(.output(e, line: l))
            case .stmtOpen:
                guard case .name(let kw)? = peek(1) else { throw fail("a statement needs a keyword") }
                if ends.contains(kw) { return nodes }
                let l = line
                i += 2
                ops = 0
                switch kw {
                case "if": nodes.append(try parseIf(line: l))
                case "for": nodes.append(try parseFor(line: l))
                case "set": nodes.append(try parseSet(line: l))
                case "generation":
                    try expect(.stmtClose, "%} after generation")
                    let b = try parseBody(until: ["endgeneration"])
                    try endTag("endgeneration")
                    nodes.append(.generation(b))
                case "macro":
                    guard case .name(let name)? = next() else { throw fail("macro needs a name") }
                    try expect(.op("("), "( after the macro name")
                    var params: [(String, Expr?)] = []
                    while !isOp(")") {
                        guard case .name(let p)? = next() else { throw fail("a macro parameter must be a name") }
                        var def: Expr? = nil
                        if isOp("=") { i += 1; def = try parseExpr() }
                        params.append((p, def))
                        if isOp(",") { i += 1 } else { break }
                    }
                    try expect(.op(")"), ") after the macro parameters")
                    try expect(.stmtClose, "%} after the macro")
                    let b = try parseBody(until: ["endmacro"])
                    try endTag("endmacro")
                    nodes.append(.macro(name: name, params: params, body: b))
                case "break", "continue":
                    try expect(.stmtClose, "%} after \(kw)")
                    nodes.append(kw == "break" ? .breakLoop : .continueLoop)
                case "filter":
                    let filters = try parseFilterCalls(first: true)
                    i += 1
                    let b = try parseBody(until: ["endfilter"])
                    try endTag("endfilter")
                    nodes.append(.filterBlock(filters: filters, body: b, line: l))
                case "with":
                    var names: [(String, Expr)] = []
                    while peek() != .stmtClose {
                        guard case .name(let n)? = next() else { throw fail("with needs name = value") }
                        try expect(.op("="), "= after \(n) in with")
                        names.append((n, try parseExpr()))
                        if isOp(",") { i += 1 } else { break }
                    }
                    try expect(.stmtClose, "%} after with")
                    let b = try parseBody(until: ["endwith"])
                    try endTag("endwith")
                    nodes.append(.with(names, body: b, line: l))
                default:
                    i -= 2
                    let closers: Set<String> = ["elif", "else", "endif", "endfor", "endmacro", "endset", "endgeneration", "endfilter", "endwith"]
                    throw fail(!closers.contains(kw) ? "'\(kw)' is not a statement Winnow's chat templates read (if, for, set, macro, generation, filter, with, break, continue are)"
                               : ends.isEmpty ? "'\(kw)' without the statement it closes"
                               : "'\(kw)' where \(ends.sorted().joined(separator: " or ")) was expected")
                }
            default: throw fail("unexpected token")
            }
        }
        guard ends.isEmpty else { throw fail("missing \(ends.sorted().joined(separator: " or "))") }
        return nodes
    }

    mutating func endTag(_ kw: String) throws {
        try expect(.stmtOpen, "{% \(kw) %}")
        try expect(.name(kw), kw)
        try expect(.stmtClose, "%} after \(kw)")
    }

    mutating func parseIf(line l: Int) throws -> Node {
        var chain: [(Expr?, [Node])] = []
        var cond: Expr? = try parseExpr()
        try expect(.stmtClose, "%} after the if condition")
        while true {
            let b = try parseBody(until: ["elif", "else", "endif"])
            chain.append((cond, b))
            try expect(.stmtOpen, "{%")
            guard case .name(let kw)? = next() else { throw fail("expected elif, else or endif") }
            if kw == "endif" { try expect(.stmtClose, "%} after endif"); break }
            if kw == "elif" { cond = try parseExpr() } else {
                cond = nil
                try expect(.stmtClose, "%} after else")
                let b = try parseBody(until: ["endif"])
                chain.append((nil, b))
                try endTag("endif")
                break
            }
            try expect(.stmtClose, "%} after the elif condition")
        }
        return .ifChain(chain, line: l)
    }

    mutating func parseFor(line l: Int) throws -> Node {
        var targets: [String] = []
        repeat {
            guard case .name(let n)? = next() else { throw fail("for needs a loop variable") }
            targets.append(n)
        } while isOp(",") && next() != nil
        guard next() == .name("in") else { throw fail("expected 'in' in the for statement") }
        let iterable = try parseExpr(noTernary: true)
        var filter: Expr? = nil
        if isName("if") { i += 1; filter = try parseExpr(noTernary: true) }
        if isName("recursive") { throw fail("recursive loops are not supported") }
        try expect(.stmtClose, "%} after the for statement")
        let body = try parseBody(until: ["else", "endfor"])
        var orElse: [Node] = []
        try expect(.stmtOpen, "{%")
        if next() == .name("else") {
            try expect(.stmtClose, "%} after else")
            orElse = try parseBody(until: ["endfor"])
            try endTag("endfor")
        } else {
            try expect(.stmtClose, "%} after endfor")
        }
        return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, orElse: orElse, line: l)
    }

    mutating func parseSet(line l: Int) throws -> Node {
        guard case .name(let n)? = next() else { throw fail("set needs a name") }
        var attr: String? = nil
        if isOp(".") {
            i += 1
            guard case .name(let a)? = next() else { throw fail("set needs an attribute name after '.'") }
            attr = a
        }
        if isOp(",") { throw fail("set with several targets is not supported") }
        if attr == nil, peek() == .stmtClose || isOp("|") {
            let filters = isOp("|") ? try parseFilterCalls(first: false) : []
            i += 1
            let b = try parseBody(until: ["endset"])
            try endTag("endset")
            return .setBlock(target: n, filters: filters, body: b, line: l)
        }
        try expect(.op("="), "= in the set statement")
        let v = try parseExpr()
        try expect(.stmtClose, "%} after the set statement")
        return .set(target: n, attr: attr, value: v, line: l)
    }

    /// The filters of a block statement up to its `%}` (left unconsumed): `name(args) | name ...`, the first without
    /// a leading `|` when `first`.
    mutating func parseFilterCalls(first: Bool) throws -> [FilterCall] {
        var out: [FilterCall] = []
        var lead = first
        while lead || isOp("|") {
            if !lead { i += 1 }
            lead = false
            guard case .name(let f)? = next() else { throw fail("a filter name expected") }
            var args: [Expr] = [], kwargs: [(String, Expr)] = []
            if isOp("(") { (args, kwargs) = try parseArgs() }
            out.append((f, args, kwargs))
        }
        guard peek() == .stmtClose else { throw fail("expected %} after the filters") }
        return out
    }

    // Expressions, loosest first: ternary, or, and, not, comparisons, + -, ~, * / // %, unary, postfix.
    mutating func parseExpr(noTernary: Bool = false) throws -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw fail("an expression nested more than \(Self.maxDepth) deep") }
        let e = try parseOr()
        guard !noTernary, isName("if") else { return e }
        i += 1
        let c = try parseOr()
        var other: Expr? = nil
        if isName("else") { i += 1; other = try parseExpr() }
        return .ternary(e, c, other)
    }

    mutating func parseOr() throws -> Expr {
        var e = try parseAnd()
        while isName("or") { i += 1; try op(); e = .binary("or", e, try parseAnd()) }
        return e
    }

    mutating func parseAnd() throws -> Expr {
        var e = try parseNot()
        while isName("and") { i += 1; try op(); e = .binary("and", e, try parseNot()) }
        return e
    }

    mutating func parseNot() throws -> Expr {
        if isName("not") {
            i += 1
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw fail("an expression nested more than \(Self.maxDepth) deep") }
            return .unary("not", try parseNot())
        }
        return try parseCompare()
    }

    /// Comparisons chain as in Python: `a < b < c` is `a < b and b < c` (b read once in Jinja; here twice, and
    /// expressions have no side effects).
    mutating func parseCompare() throws -> Expr {
        let first = try parseMath1()
        var left = first
        var result: Expr? = nil
        while true {
            let cmp: (Expr) -> Expr
            if case .op(let o)? = peek(), ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                i += 1; try op()
                let l = left
                cmp = { .binary(o, l, $0) }
            } else if isName("in") {
                i += 1; try op()
                let l = left
                cmp = { .binary("in", l, $0) }
            } else if isName("not"), isName("in", 1) {
                i += 2; try op()
                let l = left
                cmp = { .unary("not", .binary("in", l, $0)) }
            } else { return result ?? first }
            let right = try parseMath1()
            let c = cmp(right)
            result = result.map { .binary("and", $0, c) } ?? c
            left = right
        }
    }

    mutating func parseMath1() throws -> Expr {
        var e = try parseConcat()
        while case .op(let o)? = peek(), o == "+" || o == "-" { i += 1; try op(); e = .binary(o, e, try parseConcat()) }
        return e
    }

    mutating func parseConcat() throws -> Expr {
        var e = try parseMath2()
        while isOp("~") { i += 1; try op(); e = .binary("~", e, try parseMath2()) }
        return e
    }

    mutating func parseMath2() throws -> Expr {
        var e = try parsePow()
        while case .op(let o)? = peek(), ["*", "/", "//", "%"].contains(o) { i += 1; try op(); e = .binary(o, e, try parsePow()) }
        return e
    }

    mutating func parsePow() throws -> Expr {
        var e = try parseUnary()
        while isOp("**") { i += 1; try op(); e = .binary("**", e, try parseUnary()) }
        return e
    }

    /// A sign applies to the operand before its filters, as in Jinja: `-1|string` is `(-1)|string`.
    mutating func parseUnary(withFilters: Bool = true) throws -> Expr {
        var e: Expr
        if isOp("-") || isOp("+") {
            let minus = isOp("-")
            i += 1
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw fail("an expression nested more than \(Self.maxDepth) deep") }
            let x = try parseUnary(withFilters: false)
            e = minus ? .unary("-", x) : x
        } else {
            e = try parsePostfix(try parsePrimary())
        }
        guard withFilters else { return e }
        // Filters and tests bind tighter than any operator.
        while true {
            if isOp("|") {
                i += 1
                try op()
                guard case .name(let f)? = next() else { throw fail("a filter name must follow |") }
                var args: [Expr] = [], kwargs: [(String, Expr)] = []
                if isOp("(") { (args, kwargs) = try parseArgs() }
                e = .filter(e, f, args, kwargs)
                e = try parsePostfix(e)
            } else if isName("is") {
                i += 1
                try op()
                var negated = false
                if isName("not") { i += 1; negated = true }
                guard case .name(var t)? = next() else { throw fail("a test name must follow 'is'") }
                if t == "none" || t == "None" { t = "none" }
                var args: [Expr] = []
                if isOp("(") { args = try parseArgs().0 } else if case .string? = peek() { args = [try parsePrimary()] }
                else if case .int? = peek() { args = [try parsePrimary()] }
                e = .test(e, t, args, negated: negated)
            } else { return e }
        }
    }

    mutating func parseArgs() throws -> ([Expr], [(String, Expr)]) {
        try expect(.op("("), "(")
        var args: [Expr] = [], kwargs: [(String, Expr)] = []
        while !isOp(")") {
            if case .name(let k)? = peek(), peek(1) == .op("=") {
                i += 2; kwargs.append((k, try parseExpr()))
            } else {
                args.append(try parseExpr())
            }
            if isOp(",") { i += 1 } else { break }
        }
        try expect(.op(")"), ") to close the arguments")
        return (args, kwargs)
    }

    mutating func parsePostfix(_ base: Expr) throws -> Expr {
        var e = base
        while true {
            if isOp(".") || isOp("[") || isOp("(") { try op() }
            if isOp(".") {
                i += 1
                if case .name(let a)? = peek() { i += 1; e = .attr(e, a) }
                else if case .int(let n)? = peek() { i += 1; e = .index(e, .literal(.int(n))) }
                else { throw fail("an attribute name must follow '.'") }
            } else if isOp("[") {
                i += 1
                var parts: [Expr?] = [nil]
                var colons = 0
                while !isOp("]") {
                    if isOp(":") { i += 1; colons += 1; parts.append(nil); continue }
                    parts[parts.count - 1] = try parseExpr()
                }
                i += 1
                if colons == 0 {
                    guard let k = parts[0] else { throw fail("an empty subscript") }
                    e = .index(e, k)
                } else {
                    guard colons <= 2 else { throw fail("a slice has at most two colons") }
                    e = .slice(e, parts[0], parts.count > 1 ? parts[1] : nil, parts.count > 2 ? parts[2] : nil)
                }
            } else if isOp("(") {
                let (a, k) = try parseArgs()
                e = .call(e, a, k)
            } else { return e }
        }
    }

    mutating func parsePrimary() throws -> Expr {
        guard let t = next() else { throw fail("the template ends inside an expression") }
        switch t {
        case .string(var s):
            // Adjacent string literals join, as in Python.
            while case .string(let more)? = peek() { s += more; i += 1 }
            return .literal(.string(s))
        case .int(let n): return .literal(.int(n))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let e = try parseExpr()
            if isOp(",") {
                var items = [e]
                while isOp(",") { i += 1; if isOp(")") { break }; items.append(try parseExpr()) }
                try expect(.op(")"), ")")
                return .list(items)
            }
            try expect(.op(")"), ") to close the parenthesis")
            return e
        case .op("["):
            var items: [Expr] = []
            while !isOp("]") { items.append(try parseExpr()); if isOp(",") { i += 1 } else { break } }
            try expect(.op("]"), "] to close the list")
            return .list(items)
        case .op("{"):
            var items: [(Expr, Expr)] = []
            while !isOp("}") {
                let k = try parseExpr()
                try expect(.op(":"), ": in the dict")
                items.append((k, try parseExpr()))
                if isOp(",") { i += 1 } else { break }
            }
            try expect(.op("}"), "} to close the dict")
            return .dict(items)
        default:
            i -= 1
            throw fail("unexpected token in an expression")
        }
    }
}

// MARK: - Evaluation

private enum Flow { case normal, breakLoop, continueLoop }

private struct Context {
    var scopes: [[String: Value]] = []
    var namespaces: [[String: Value]] = []
    var macros: [(params: [(String, Expr?)], body: [Node])] = []
    let now: Date
    /// Work done and macro calls in progress, bounded: a template that loops for ever or recurses is refused.
    var steps = 0, calls = 0
    static let maxSteps = 1_000_000, maxCalls = 100, maxLength = 50_000_000
    static let builtins: Set<String> = ["raise_exception", "strftime_now", "namespace", "dict", "range"]
    var line = 1

    init(now: Date) { self.now = now }

    func fail(_ m: String) -> ChatTemplate.Failure { ChatTemplate.Failure(message: m, line: line) }

    func lookup(_ n: String) -> Value {
        for s in scopes.reversed() { if let v = s[n] { return v } }
        return Self.builtins.contains(n) ? .function(n) : .undefined
    }

    mutating func assign(_ n: String, _ v: Value) { scopes[scopes.count - 1][n] = v }

    mutating func run(_ nodes: [Node], into out: inout String) throws -> Flow {
        for node in nodes {
            steps += 1
            guard steps <= Self.maxSteps, out.utf8.count <= Self.maxLength else { throw fail("the template runs too long (more than \(Self.maxSteps) steps or \(Self.maxLength) bytes)") }
            switch node {
            case .text(let s): out += s
            case .output(let e, let l):
                line = l
                let v = try eval(e)
                if case .generator = v { throw fail("a generator (of map, select and the like) is printed, which Jinja writes with its memory address") }
                out += v.text
            case .ifChain(let chain, let l):
                line = l
                for (cond, body) in chain {
                    if try cond.map({ try eval($0).truthy }) ?? true {
                        let f = try run(body, into: &out)
                        if f != .normal { return f }
                        break
                    }
                }
            case .forLoop(let targets, let iterable, let filter, let body, let orElse, let l):
                line = l
                var items: [Value]
                switch try eval(iterable) {
                case .list(let xs), .generator(let xs): items = xs
                case .dict(let d): items = d.map { .string($0.0) }
                case .string(let s): items = s.map { .string(String($0)) }
                case .undefined: items = []
                default: throw fail("a for loop over \(try eval(iterable).repr.prefix(40)), which is not iterable")
                }
                func bind(_ item: Value) throws -> [String: Value] {
                    if targets.count == 1 { return [targets[0]: item] }
                    guard case .list(let parts) = item, parts.count == targets.count else { throw fail("cannot unpack the loop item into \(targets.count) names") }
                    return Dictionary(uniqueKeysWithValues: zip(targets, parts))
                }
                if let filter {
                    var kept: [Value] = []
                    for item in items {
                        scopes.append(try bind(item))
                        defer { scopes.removeLast() }
                        if try eval(filter).truthy { kept.append(item) }
                    }
                    items = kept
                }
                if items.isEmpty { if try run(orElse, into: &out) != .normal { return .normal } ; continue }
                for (k, item) in items.enumerated() {
                    steps += 1
                    guard steps <= Self.maxSteps else { throw fail("the template runs too long (more than \(Self.maxSteps) steps)") }
                    var scope = try bind(item)
                    scope["loop"] = .dict([("index", .int(k + 1)), ("index0", .int(k)), ("first", .bool(k == 0)), ("last", .bool(k == items.count - 1)),
                                           ("length", .int(items.count)), ("revindex", .int(items.count - k)), ("revindex0", .int(items.count - k - 1)),
                                           ("previtem", k > 0 ? items[k - 1] : .undefined), ("nextitem", k + 1 < items.count ? items[k + 1] : .undefined)])
                    scopes.append(scope)
                    let f = try run(body, into: &out)
                    scopes.removeLast()
                    if f == .breakLoop { break }
                }
            case .set(let target, let attr, let value, let l):
                line = l
                let v = try bounded(try eval(value))
                if let attr {
                    guard case .namespace(let id) = lookup(target) else { throw fail("'\(target)' is not a namespace: set \(target).\(attr) needs one") }
                    namespaces[id][attr] = v
                } else {
                    assign(target, v)
                }
            case .setBlock(let target, let filters, let body, let l):
                line = l
                var s = ""
                _ = try run(body, into: &s)
                line = l
                assign(target, try bounded(try applying(filters, to: .string(s))))
            case .filterBlock(let filters, let body, let l):
                line = l
                var s = ""
                let f = try run(body, into: &s)
                line = l
                let v = try applying(filters, to: .string(s))
                if case .generator = v { throw fail("a generator (of map, select and the like) is printed, which Jinja writes with its memory address") }
                out += v.text
                if f != .normal { return f }
            case .with(let names, let body, let l):
                line = l
                var scope: [String: Value] = [:]
                for (n, e) in names { scope[n] = try bounded(try eval(e)) }
                scopes.append(scope)
                defer { scopes.removeLast() }
                let f = try run(body, into: &out)
                if f != .normal { return f }
            case .generation(let body):
                let f = try run(body, into: &out)
                if f != .normal { return f }
            case .macro(let name, let params, let body):
                macros.append((params, body))
                assign(name, .macro(macros.count - 1))
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            }
        }
        return .normal
    }

    mutating func eval(_ e: Expr) throws -> Value {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let xs): return try bounded(.list(try xs.map { try eval($0) }))
        case .dict(let kv):
            var d: [(String, Value)] = []
            for (k, v) in kv {
                let key = try eval(k).text, val = try eval(v)
                if let at = d.firstIndex(where: { $0.0 == key }) { d[at].1 = val } else { d.append((key, val)) }
            }
            return try bounded(.dict(d))
        case .attr(let b, let a):
            let base = try eval(b)
            if case .namespace(let id) = base { return namespaces[id][a] ?? .undefined }
            // `d.items` is the dict's method, not its key "items" (Jinja looks an attribute up before an item).
            if case .dict = base, Self.dictMethods.contains(a) { return .function("dict." + a) }
            return try item(base, .string(a))
        case .index(let b, let k): return try item(try eval(b), try eval(k))
        case .slice(let b, let lo, let hi, let step): return try slice(try eval(b), lo.map { try eval($0) }, hi.map { try eval($0) }, step.map { try eval($0) })
        case .call(let f, let args, let kwargs): return try call(f, args.map { try eval($0) }, kwargs.map { ($0.0, try eval($0.1)) })
        case .filter(let b, let name, let args, let kwargs): return try filter(name, try eval(b), args.map { try eval($0) }, kwargs.map { ($0.0, try eval($0.1)) })
        case .test(let b, let name, let args, let negated):
            let r = try test(name, try eval(b), args.map { try eval($0) })
            return .bool(negated ? !r : r)
        case .unary(let op, let x):
            let v = try eval(x)
            if op == "not" { return .bool(!v.truthy) }
            if case .int(let n) = v { return .int(0 &- n) }
            guard let d = v.number else { throw fail("cannot negate \(v.repr)") }
            return .double(-d)
        case .binary(let op, let a, let b):
            if op == "and" { let x = try eval(a); return x.truthy ? try eval(b) : x }
            if op == "or" { let x = try eval(a); return x.truthy ? x : try eval(b) }
            if op == "+", Self.isMarkup(a) || Self.isMarkup(b) { return try markupSum(a, b) }
            return try binary(op, try eval(a), try eval(b))
        case .ternary(let yes, let cond, let no):
            return try eval(cond).truthy ? try eval(yes) : try no.map { try eval($0) } ?? .undefined
        }
    }

    /// Python's dict methods, which `d.name` gives before a key `name`.
    static let dictMethods: Set<String> = ["items", "keys", "values", "get", "pop", "popitem", "update", "copy", "clear", "setdefault", "fromkeys"]

    /// `v` through a block's filters, in order.
    mutating func applying(_ filters: [FilterCall], to v: Value) throws -> Value {
        var v = v
        for (name, args, kwargs) in filters { v = try filter(name, v, args.map { try eval($0) }, kwargs.map { ($0.0, try eval($0.1)) }) }
        return v
    }

    /// Whether `e` gives Markup (`|safe`, or a `+` with Markup on a side): Markup's `+` HTML-escapes a plain string on
    /// its other side (`"Use '"|safe + name` escapes the name; transformers' `tojson` gives a plain string).
    static func isMarkup(_ e: Expr) -> Bool {
        switch e {
        case .filter(_, "safe", _, _): true
        case .binary("+", let a, let b): isMarkup(a) || isMarkup(b)
        default: false
        }
    }

    /// `a + b` where a side is Markup: the plain string side escaped as `markupsafe.escape` does (& < > " ').
    mutating func markupSum(_ a: Expr, _ b: Expr) throws -> Value {
        func side(_ e: Expr) throws -> String {
            let v = try eval(e)
            guard case .string(let s) = v else { throw fail("Markup (|safe) + \(v.repr), which is not a string") }
            if Self.isMarkup(e) { return s }
            var o = ""
            for c in s.unicodeScalars {
                switch c {
                case "&": o += "&amp;"
                case "<": o += "&lt;"
                case ">": o += "&gt;"
                case "\"": o += "&#34;"
                case "'": o += "&#39;"
                default: o.unicodeScalars.append(c)
                }
            }
            return o
        }
        let x = try side(a)
        return try sized(x + side(b))
    }

    /// How deep lists and dicts nest in `v` (counting stops past `limit`).
    static func depth(_ v: Value, limit: Int = maxNesting) -> Int {
        guard limit >= 0 else { return 1 }
        switch v {
        case .list(let l), .generator(let l): return 1 + (l.map { depth($0, limit: limit - 1) }.max() ?? 0)
        case .dict(let d): return 1 + (d.map { depth($0.1, limit: limit - 1) }.max() ?? 0)
        default: return 0
        }
    }
    static let maxNesting = 64

    /// A string value, refused past `maxLength` bytes (`set x = x + x` in a loop doubles it each time).
    func sized(_ s: String) throws -> Value {
        guard s.utf8.count <= Self.maxLength else { throw fail("a string longer than \(Self.maxLength) bytes") }
        return .string(s)
    }

    /// `v`, refused when it nests deeper than `maxNesting` (a value built by a loop could be a tree 50,000 deep).
    func bounded(_ v: Value) throws -> Value {
        guard Self.depth(v) <= Self.maxNesting else { throw fail("a list or dict nested more than \(Self.maxNesting) deep") }
        return v
    }

    func item(_ base: Value, _ key: Value) throws -> Value {
        if case .undefined = base { throw fail("an undefined value has no attribute or item \(key.repr)") }
        switch (base, key) {
        case let (.dict(d), k): return d.first { $0.0 == k.text }?.1 ?? .undefined
        case let (.list(l), .int(n)):
            let k = n < 0 ? l.count + n : n
            return l.indices.contains(k) ? l[k] : .undefined
        case let (.string(s), .int(n)):
            let sc = Array(s.unicodeScalars), k = n < 0 ? sc.count + n : n
            return sc.indices.contains(k) ? .string(String(sc[k])) : .undefined
        default: return .undefined
        }
    }

    func slice(_ base: Value, _ lo: Value?, _ hi: Value?, _ step: Value?) throws -> Value {
        func bounds(_ n: Int) throws -> [Int] {
            let st: Int
            if let step, case .int(let s) = step { st = s } else if step == nil || { if case .none = step! { return true }; return false }() { st = 1 } else { throw fail("a slice step must be an integer") }
            guard st != 0 else { throw fail("a slice step cannot be zero") }
            func idx(_ v: Value?, _ def: Int) throws -> Int {
                guard let v else { return def }
                if case .none = v { return def }
                guard case .int(var k) = v else { throw fail("slice bounds must be integers") }
                if k < 0 { k += n }
                return st > 0 ? min(max(k, 0), n) : min(max(k, -1), n - 1)
            }
            let a = try idx(lo, st > 0 ? 0 : n - 1), b = try idx(hi, st > 0 ? n : -1)
            return Array(stride(from: a, to: b, by: st))
        }
        switch base {
        case .list(let l): return .list(try bounds(l.count).map { l[$0] })
        case .string(let s):
            let sc = Array(s.unicodeScalars)
            return .string(String(String.UnicodeScalarView(try bounds(sc.count).map { sc[$0] })))
        default: throw fail("cannot slice \(base.repr)")
        }
    }

    func binary(_ op: String, _ a: Value, _ b: Value) throws -> Value {
        switch op {
        case "==": return .bool(a.equals(b))
        case "!=": return .bool(!a.equals(b))
        case "~":
            if case .generator = a { throw fail("a generator (of map, select and the like) joined with ~") }
            if case .generator = b { throw fail("a generator (of map, select and the like) joined with ~") }
            return try sized(a.text + b.text)
        case "in":
            switch b {
            case .string(let s): return .bool(PyStr.find(a.text, in: s) != nil)
            case .list(let l), .generator(let l): return .bool(l.contains { $0.equals(a) })
            case .dict(let d): return .bool(d.contains { $0.0 == a.text })
            case .undefined: return .bool(false)     // Jinja's Undefined iterates as empty
            default: throw fail("'in' \(b.repr), which is not iterable (Python: argument of type is not iterable)")
            }
        case "<", ">", "<=", ">=":
            let r: Bool
            if case .string(let x) = a, case .string(let y) = b {
                let lt = PyStr.less(x, y), gt = PyStr.less(y, x)
                r = op == "<" ? lt : op == ">" ? gt : op == "<=" ? !gt : !lt
            }
            else if let x = a.number, let y = b.number { r = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y }
            else { throw fail("cannot compare \(a.repr) and \(b.repr)") }
            return .bool(r)
        case "+":
            switch (a, b) {
            case let (.string(x), .string(y)): return try sized(x + y)
            case let (.list(x), .list(y)) where x.count + y.count > Self.maxLength / 8: throw fail("a list longer than \(Self.maxLength / 8) items")
            case let (.list(x), .list(y)): return .list(x + y)
            case let (.int(x), .int(y)): return .int(x &+ y)
            default:
                if case .undefined = a { throw fail("an undefined value in +") }
                if case .undefined = b { throw fail("an undefined value in +") }
                guard let x = a.number, let y = b.number else { throw fail("cannot add \(a.repr) and \(b.repr)") }
                return .double(x + y)
            }
        case "**":
            if case .int(let x) = a, case .int(let y) = b, y >= 0 {
                var r = 1
                for _ in 0..<min(y, 64) { let (m, o) = r.multipliedReportingOverflow(by: x); guard !o else { return .double(pow(Double(x), Double(y))) }; r = m }
                return y > 64 && abs(x) > 1 ? .double(pow(Double(x), Double(y))) : .int(y > 64 ? (x == -1 && y % 2 == 1 ? -1 : (x == 0 ? 0 : 1)) : r)
            }
            guard let x = a.number, let y = b.number else { throw fail("cannot raise \(a.repr) to \(b.repr)") }
            return .double(pow(x, y))
        case "-", "*", "/", "//", "%":
            if op == "*", case .string(let s) = a, case .int(let n) = b {
                guard n <= 0 || s.utf8.count <= Self.maxLength / n else { throw fail("a string repeated beyond \(Self.maxLength) bytes") }
                return .string(String(repeating: s, count: max(0, n)))
            }
            if op == "%", case .string = a { throw fail("string formatting with % is not supported") }
            if case .int(let x) = a, case .int(let y) = b, op != "/" {
                switch op {
                case "-": return .int(x &- y)
                case "*": return .int(x &* y)
                default:
                    guard y != 0 else { throw fail("division by zero") }
                    // Python's floor division and modulo, without trapping on overflow.
                    let (q0, over) = x.dividedReportingOverflow(by: y)
                    guard !over else { throw fail("integer overflow in \(op)") }
                    let q = x.remainderReportingOverflow(dividingBy: y).partialValue != 0 && (x < 0) != (y < 0) ? q0 - 1 : q0
                    return .int(op == "//" ? q : x &- q &* y)
                }
            }
            guard let x = a.number, let y = b.number else { throw fail("cannot apply \(op) to \(a.repr) and \(b.repr)") }
            switch op {
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/": guard y != 0 else { throw fail("division by zero") }; return .double(x / y)
            case "//": guard y != 0 else { throw fail("division by zero") }; return .double((x / y).rounded(.down))
            default: guard y != 0 else { throw fail("division by zero") }; return .double(x - (x / y).rounded(.down) * y)
            }
        default: throw fail("unknown operator \(op)")
        }
    }

    mutating func call(_ f: Expr, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        // Methods of strings, lists and dicts.
        if case .attr(let b, let m) = f {
            let base = try eval(b)
            if case .namespace = base { throw fail("a namespace attribute is not callable") }
            return try method(base, m, args)
        }
        let callee = try eval(f)
        if case .macro(let id) = callee {
            calls += 1
            defer { calls -= 1 }
            guard calls <= Self.maxCalls else { throw fail("macros call each other more than \(Self.maxCalls) deep") }
            let (params, body) = macros[id]
            var scope: [String: Value] = [:]
            for (k, (p, def)) in params.enumerated() {
                scope[p] = k < args.count ? args[k] : try kwargs.first { $0.0 == p }?.1 ?? def.map { try eval($0) } ?? .undefined
            }
            // A macro sees the template's top-level names (their values now) and its parameters, not the caller's
            // loop variables or the names set inside its loops (Jinja's scoping).
            let callerScopes = scopes
            scopes = [scopes[0], scope]
            defer { scopes = callerScopes }
            var s = ""
            _ = try run(body, into: &s)
            return .string(s)
        }
        guard case .function(let n) = callee else { throw fail("\(callee.repr.prefix(40)) is not callable") }
        switch n {
        case "raise_exception": throw fail("the template raised an exception: \(args.first?.text ?? "")")
        case "strftime_now":
            guard case .string(let fmt)? = args.first else { throw fail("strftime_now needs a format") }
            return .string(Self.strftime(fmt, now))
        case "namespace":
            var attrs: [String: Value] = [:]
            if case .dict(let d)? = args.first { for (k, v) in d { attrs[k] = v } }
            for (k, v) in kwargs { attrs[k] = v }
            namespaces.append(attrs)
            return .namespace(namespaces.count - 1)
        case "dict":
            return .dict(kwargs)
        case "range":
            let ints = args.compactMap { v -> Int? in if case .int(let i) = v { return i }; return nil }
            guard ints.count == args.count, (1...3).contains(ints.count) else { throw fail("range needs one to three integers") }
            let (a, b, s) = ints.count == 1 ? (0, ints[0], 1) : (ints[0], ints[1], ints.count == 3 ? ints[2] : 1)
            guard s != 0 else { throw fail("range with a step of zero") }
            // A range costs its length in steps, so that nested ranges cannot run for hours before the budget stops them.
            let n = min(Double(Self.maxSteps + 1), max(0, ((Double(b) - Double(a)) / Double(s)).rounded(.up)))
            // Jinja's sandbox refuses ranges longer than 100,000 (MAX_RANGE).
            guard n <= 100_000 else { throw fail("range too big (Jinja's sandbox allows at most 100000 items)") }
            steps += Int(n)
            guard steps <= Self.maxSteps else { throw fail("the template runs too long (more than \(Self.maxSteps) steps)") }
            return .list(Array(stride(from: a, to: b, by: s)).map { .int($0) })
        default:
            throw fail("the function '\(n)' is not one Winnow's chat templates provide (raise_exception, strftime_now, namespace, dict, range)")
        }
    }

    func method(_ base: Value, _ m: String, _ args: [Value]) throws -> Value {
        func arg(_ k: Int) -> String? { if k < args.count, case .string(let s) = args[k] { return s }; return nil }
        // loop.cycle(a, b, ...): the argument at the loop's index, round.
        if m == "cycle", case .dict(let d) = base, case .int(let k)? = d.first(where: { $0.0 == "index0" })?.1 {
            guard !args.isEmpty else { throw fail("loop.cycle needs at least one value") }
            return args[k % args.count]
        }
        switch (base, m) {
        case (.string(let s), "strip"), (.string(let s), "lstrip"), (.string(let s), "rstrip"):
            let chars = arg(0).map { Set($0.unicodeScalars) }
            func strip(_ c: Unicode.Scalar) -> Bool { chars?.contains(c) ?? ChatTemplate.isSpace(c) }
            var sc = Array(s.unicodeScalars)[...]
            if m != "rstrip" { while let f = sc.first, strip(f) { sc = sc.dropFirst() } }
            if m != "lstrip" { while let l = sc.last, strip(l) { sc = sc.dropLast() } }
            return .string(String(String.UnicodeScalarView(sc)))
        case (.string(let s), "upper"): return .string(s.uppercased())
        case (.string(let s), "lower"): return .string(s.lowercased())
        case (.string(let s), "startswith"): return .bool(arg(0).map { s.unicodeScalars.starts(with: $0.unicodeScalars) } ?? false)
        case (.string(let s), "endswith"): return .bool(arg(0).map { s.unicodeScalars.reversed().starts(with: $0.unicodeScalars.reversed()) } ?? false)
        case (.string(let s), "replace"):
            guard let a = arg(0), let b = arg(1), !a.isEmpty else { throw fail("replace needs two strings") }
            var count: Int? = nil
            if args.count > 2 { guard case .int(let n) = args[2] else { throw fail("replace's count must be an integer") }; count = n }
            guard let r = PyStr.replace(s, a, with: b, count: count, maxBytes: Self.maxLength) else {
                throw fail("a string longer than \(Self.maxLength) bytes")
            }
            return .string(r)
        case (.string(let s), "title"): return .string(s.capitalized)
        case (.string(let s), "capitalize"): return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case (.string(let s), "count"):
            guard let sub = arg(0), !sub.isEmpty else { throw fail("count needs a string") }
            return .int(PyStr.split(s, sub).count - 1)
        case (.string(let s), "find"):
            guard let sub = arg(0) else { throw fail("find needs a string") }
            return .int(PyStr.find(sub, in: s) ?? -1)
        case (.string(let s), "join"):
            guard case .list(let l)? = args.first else { throw fail("join needs a list") }
            return try sized(l.map(\.text).joined(separator: s))
        case (.string(let s), "rsplit"):
            guard let sep = arg(0), !sep.isEmpty else { throw fail("rsplit needs a separator") }
            let parts = PyStr.split(s, sep)
            guard args.count > 1, case .int(let maxsplit) = args[1], maxsplit >= 0, maxsplit < parts.count - 1 else { return .list(parts.map { .string($0) }) }
            let head = parts[..<(parts.count - maxsplit)].joined(separator: sep)
            return .list([.string(head)] + parts[(parts.count - maxsplit)...].map { .string($0) })
        case (.string(let s), "split"):
            // split(sep=None, maxsplit=-1)
            var maxsplit = -1
            if args.count > 1 { guard case .int(let n) = args[1] else { throw fail("split's maxsplit must be an integer") }; maxsplit = n }
            if let sep = arg(0) {
                guard !sep.isEmpty else { throw fail("split with an empty separator") }
                return .list(PyStr.split(s, sep, maxsplit: maxsplit).map { .string($0) })
            }
            if args.first.map({ if case .none = $0 { false } else { true } }) == true { throw fail("split's separator must be a string or None") }
            return .list(PyStr.splitWhitespace(s, maxsplit: maxsplit).map { .string($0) })
        case (.string(let s), "format"):
            // Positional {} and {0}-style fields only.
            var out = "", rest = s[...], next = 0
            while let open = rest.firstIndex(of: "{") {
                out += rest[..<open]
                guard let close = rest[open...].firstIndex(of: "}") else { throw fail("format: an unclosed {") }
                let field = rest[rest.index(after: open)..<close]
                let k = field.isEmpty ? next : Int(field) ?? -1
                guard args.indices.contains(k) else { throw fail("format: the field {\(field)} has no argument") }
                out += args[k].text
                next += 1
                rest = rest[rest.index(after: close)...]
            }
            return try sized(out + rest)
        case (.dict(let d), "items"): return .list(d.map { .list([.string($0.0), $0.1]) })
        case (.dict(let d), "keys"): return .list(d.map { .string($0.0) })
        case (.dict(let d), "values"): return .list(d.map { $0.1 })
        case (.dict, "get"):
            guard let k = args.first else { throw fail("get needs a key") }
            let v = try item(base, k)
            if case .undefined = v { return args.count > 1 ? args[1] : .none }
            return v
        default: throw fail("the method '\(m)' of \(base.repr.prefix(40)) is not one Winnow's chat templates provide")
        }
    }

    func filter(_ name: String, _ v: Value, _ args: [Value], _ kwargs: [(String, Value)]) throws -> Value {
        var v = v
        // Jinja's Undefined iterates as empty: filters that iterate read it as an empty list.
        if case .undefined = v, ["list", "join", "first", "last", "sort", "unique", "map", "select", "reject", "selectattr", "rejectattr",
                                 "reverse", "min", "max"].contains(name) {
            v = .list([])
        }
        if case .generator(let items) = v {
            // Filters that iterate read a generator's items; the others see a generator object (tojson and
            // length raise, as in transformers).
            switch name {
            case "list", "join", "first", "sort", "unique", "map", "select", "reject", "selectattr", "rejectattr", "reverse", "min", "max", "sum":
                v = .list(items)
            case "default", "d": return v
            default: throw fail("the filter '\(name)' of a generator (of map, select and the like), which Python cannot \(name == "tojson" ? "write as JSON" : "read so")")
            }
        }
        switch name {
        case "trim":
            return .string(String(String.UnicodeScalarView(Array(v.text.unicodeScalars).drop(while: ChatTemplate.isSpace).reversed().drop(while: ChatTemplate.isSpace).reversed())))
        case "tojson":
            if case .undefined = v { throw fail("tojson of an undefined value") }
            if v.holdsGenerator { throw fail("tojson of a generator (of map, select and the like), which Python cannot write as JSON") }
            // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
            var o = Value.JSONOptions()
            func set(_ k: String, _ x: Value) throws {
                switch k {
                case "ensure_ascii": o.ensureASCII = x.truthy
                case "indent":
                    switch x {
                    case .int(let n): o.indent = n
                    case .none: o.indent = nil
                    default: throw fail("tojson's indent must be an integer")
                    }
                case "separators":
                    switch x {
                    case .none: o.separators = nil
                    case .list(let p) where p.count == 2: o.separators = (p[0].text, p[1].text)
                    default: throw fail("tojson's separators must be two strings")
                    }
                case "sort_keys": o.sortKeys = x.truthy
                default: throw fail("tojson's '\(k)' is not an argument it takes")
                }
            }
            let names = ["ensure_ascii", "indent", "separators", "sort_keys"]
            guard args.count <= names.count else { throw fail("tojson takes at most 4 arguments") }
            for (k, x) in args.enumerated() { try set(names[k], x) }
            for (k, x) in kwargs { try set(k, x) }
            return .string(v.json(o))
        case "length", "count":
            switch v {
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            case .string(let s): return .int(s.unicodeScalars.count)
            case .undefined: return .int(0)
            default: throw fail("length of \(v.repr)")
            }
        case "lower": return .string(v.text.lowercased())
        case "upper": return .string(v.text.uppercased())
        case "capitalize": return .string(v.text.prefix(1).uppercased() + v.text.dropFirst().lowercased())
        case "string": return .string(v.text)
        case "safe": return v
        case "list":
            if case .list = v { return v }
            if case .string(let s) = v { return .list(s.unicodeScalars.map { .string(String($0)) }) }
            if case .dict(let d) = v { return .list(d.map { .string($0.0) }) }
            throw fail("list of \(v.repr)")
        case "default", "d":
            let fallback = args.first ?? .string("")
            if case .undefined = v { return fallback }
            if args.count > 1, args[1].truthy, !v.truthy { return fallback }
            return v
        case "join":
            guard case .list(let l) = v else { throw fail("join of something that is not a list") }
            return try sized(l.map(\.text).joined(separator: args.first?.text ?? ""))
        case "first", "last":
            guard case .list(let l) = v else { throw fail("\(name) of something that is not a list") }
            return (name == "first" ? l.first : l.last) ?? .undefined
        case "reverse":
            // A list's reverse is an iterator (as a generator: loops and filters read it, printing does not).
            if case .list(let l) = v { return .generator(l.reversed()) }
            return .string(String(String.UnicodeScalarView(v.text.unicodeScalars.reversed())))
        case "int":
            if let d = v.number { return d.isFinite && abs(d) < 9e18 ? .int(Int(d)) : .int(0) }
            return .int(Int(v.text.trimmingCharacters(in: .whitespaces)) ?? 0)
        case "replace":
            guard args.count >= 2 else { throw fail("replace needs two strings") }
            guard !args[0].text.isEmpty else { throw fail("replace of an empty string") }
            var count: Int? = nil
            if args.count > 2 { guard case .int(let n) = args[2] else { throw fail("replace's count must be an integer") }; count = n }
            guard let r = PyStr.replace(v.text, args[0].text, with: args[1].text, count: count, maxBytes: Self.maxLength) else {
                throw fail("a string longer than \(Self.maxLength) bytes")
            }
            return .string(r)
        case "dictsort":
            guard case .dict(let d) = v else { throw fail("dictsort of something that is not a dict") }
            return .list(d.sorted { PyStr.less($0.0.lowercased(), $1.0.lowercased()) }.map { .list([.string($0.0), $0.1]) })
        case "select", "reject":
            // select(test, args...) keeps the items the test passes (no test: the truthy ones); reject the others.
            if !v.truthy { return .generator([]) }
            guard case .list(let l) = v else { throw fail("\(name) of something that is not a list") }
            let keep = try l.filter { x in
                let r = args.isEmpty ? x.truthy : try test(args[0].text, x, Array(args.dropFirst()))
                return name == "select" ? r : !r
            }
            return .generator(keep)
        case "sort":
            guard case .list(let l) = v else { throw fail("sort of something that is not a list") }
            let reverse = (kwargs.first { $0.0 == "reverse" }?.1 ?? args.first ?? .bool(false)).truthy
            let attr = kwargs.first { $0.0 == "attribute" }?.1.text
            let keyed: [(Value, Value)] = try l.map { x in
                guard let attr else { return (x, x) }
                return (try item(x, .string(attr)), x)
            }
            func less(_ a: Value, _ b: Value) -> Bool {
                if case .string(let x) = a, case .string(let y) = b { return PyStr.less(x.lowercased(), y.lowercased()) }
                if let x = a.number, let y = b.number { return x < y }
                return false
            }
            let sorted = keyed.enumerated().sorted { p, q in
                less(p.element.0, q.element.0) != less(q.element.0, p.element.0) ? less(p.element.0, q.element.0) != reverse : p.offset < q.offset
            }.map { $0.element.1 }
            return .list(sorted)
        case "title":
            return .string(v.text.capitalized)
        case "indent":
            // indent(width=4, first=False, blank=False): every line but the first (unless first) gets the spaces.
            let width = (kwargs.first { $0.0 == "width" }?.1 ?? args.first).flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 4
            let first = (kwargs.first { $0.0 == "first" }?.1 ?? (args.count > 1 ? args[1] : .bool(false))).truthy
            let blank = (kwargs.first { $0.0 == "blank" }?.1 ?? (args.count > 2 ? args[2] : .bool(false))).truthy
            let pad = String(repeating: " ", count: max(0, min(width, 1000)))
            var lines = v.text.components(separatedBy: "\n")
            for k in lines.indices where (k > 0 || first) && (blank || !lines[k].isEmpty) { lines[k] = pad + lines[k] }
            guard lines.count <= Self.maxLength / max(1, pad.count + 1) else { throw fail("indent past \(Self.maxLength) bytes") }
            return try sized(lines.joined(separator: "\n"))
        case "round":
            guard let d = v.number else { throw fail("round of \(v.repr)") }
            let digits = args.first.flatMap { if case .int(let n) = $0 { n } else { nil } } ?? 0
            // Python's round: the exact binary value rounded half to even (printf rounds the same way).
            guard digits >= 0, d.isFinite else { return .double(d) }
            return .double(Double(String(format: "%.*f", min(digits, 30), d)) ?? d)
        case "abs":
            if case .int(let n) = v { return .int(n == Int.min ? n : abs(n)) }
            guard let d = v.number else { throw fail("abs of \(v.repr)") }
            return .double(abs(d))
        case "unique":
            guard case .list(let l) = v else { throw fail("unique of something that is not a list") }
            var out: [Value] = []
            for x in l where !out.contains(where: { $0.equals(x) }) { out.append(x) }
            return .generator(out)
        case "wordcount": return .int(v.text.split(whereSeparator: { $0.isWhitespace }).count)
        case "items":
            guard case .dict(let d) = v else { throw fail("items of something that is not a dict") }
            return .generator(d.map { .list([.string($0.0), $0.1]) })
        case "selectattr", "rejectattr":
            if !v.truthy { return .generator([]) }      // Jinja's select_or_reject skips a falsy sequence
            guard case .list(let l) = v, let attr = args.first?.text else { throw fail("\(name) needs a list and an attribute") }
            let keep = try l.filter { x in
                let a = try item(x, .string(attr))
                let r = args.count > 1 ? try test(args[1].text, a, Array(args.dropFirst(2))) : a.truthy
                return name == "selectattr" ? r : !r
            }
            return .generator(keep)
        case "map":
            if !v.truthy { return .generator([]) }
            guard case .list(let l) = v else { throw fail("map of something that is not a list") }
            if let attr = kwargs.first(where: { $0.0 == "attribute" })?.1.text { return .generator(try l.map { try item($0, .string(attr)) }) }
            guard let f = args.first?.text else { throw fail("map needs a filter or attribute=") }
            return .generator(try l.map { try filter(f, $0, Array(args.dropFirst()), []) })
        case "min", "max":
            // min(case_sensitive=False, attribute=None): strings compare lower-cased; an empty sequence gives undefined.
            guard case .list(let l) = v else { throw fail("\(name) of something that is not a list") }
            let sensitive = (kwargs.first { $0.0 == "case_sensitive" }?.1 ?? args.first ?? .bool(false)).truthy
            let attr = kwargs.first { $0.0 == "attribute" }?.1.text
            func key(_ x: Value) throws -> Value {
                let k = try attr.map { try item(x, .string($0)) } ?? x
                if !sensitive, case .string(let s) = k { return .string(s.lowercased()) }
                return k
            }
            guard var best = l.first else { return .undefined }
            var bestKey = try key(best)
            for x in l.dropFirst() {
                let k = try key(x)
                if try binary(name == "min" ? "<" : ">", k, bestKey).truthy { best = x; bestKey = k }
            }
            return best
        default:
            throw fail("the filter '\(name)' is not one Winnow's chat templates provide")
        }
    }

    func test(_ name: String, _ v: Value, _ args: [Value]) throws -> Bool {
        switch name {
        case "defined": if case .undefined = v { return false }; return true
        case "undefined": if case .undefined = v { return true }; return false
        case "none": if case .none = v { return true }; return false
        case "string": if case .string = v { return true }; return false
        case "number": if case .int = v { return true }; if case .double = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "mapping": if case .dict = v { return true }; if case .namespace = v { return true }; return false
        // Jinja's Undefined iterates as empty and has a length: iterable and a sequence.
        case "sequence": switch v { case .list, .string, .undefined: return true; default: return false }
        case "iterable": switch v { case .list, .string, .dict, .undefined, .generator: return true; default: return false }
        case "equalto", "eq", "==", "sameas": return v.equals(args.first ?? .undefined)
        case "ne", "!=": return !v.equals(args.first ?? .undefined)
        case "odd", "even":
            guard case .int(let n) = v else { throw fail("\(name) of something that is not an integer") }
            return (n % 2 != 0) == (name == "odd")
        case "in": return try binary("in", v, args.first ?? .undefined).truthy
        default: throw fail("the test '\(name)' is not one Winnow's chat templates provide")
        }
    }

    /// The C `strftime` formats templates use (%d %b %Y %B %m %y %H %M %S %A %a %j %%), in English, local time
    /// as Python's `datetime.now()`.
    static func strftime(_ fmt: String, _ date: Date) -> String {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone.current, from: date)
        let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
        let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
        var out = "", pct = false
        for ch in fmt {
            guard pct else { if ch == "%" { pct = true } else { out.append(ch) }; continue }
            pct = false
            let m = (c.month ?? 1) - 1, wd = (c.weekday ?? 1) - 1
            switch ch {
            case "d": out += String(format: "%02d", c.day ?? 1)
            case "m": out += String(format: "%02d", m + 1)
            case "Y": out += String(c.year ?? 1970)
            case "y": out += String(format: "%02d", (c.year ?? 1970) % 100)
            case "b": out += String(months[m].prefix(3))
            case "B": out += months[m]
            case "a": out += String(days[wd].prefix(3))
            case "A": out += days[wd]
            case "H": out += String(format: "%02d", c.hour ?? 0)
            case "M": out += String(format: "%02d", c.minute ?? 0)
            case "S": out += String(format: "%02d", c.second ?? 0)
            case "j": out += String(format: "%03d", Calendar(identifier: .gregorian).ordinality(of: .day, in: .year, for: date) ?? 1)
            case "%": out += "%"
            default: out += "%" + String(ch)
            }
        }
        return out
    }
}

// MARK: - Python's str on code points

/// Python's string operations, which work on code points: Swift's String works on grapheme clusters ("\r\n" is
/// one Character, so `split("\n")` would not cut it) and compares by canonical equivalence. The searches run on
/// UTF-8 bytes, where a well-formed needle only ever matches at code point boundaries.
enum PyStr {
    /// Where `needle` first occurs in `hay`, in code points (0 for an empty needle); nil when it does not.
    static func find(_ needle: String, in hay: String) -> Int? {
        let h = Array(hay.utf8)
        if needle.isEmpty { return 0 }
        guard let r = occurrences(of: Array(needle.utf8), in: h, limit: 1).first else { return nil }
        return h[..<r.lowerBound].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
    }

    /// Non-overlapping occurrences of a non-empty `n` in `h`, left to right, at most `limit`.
    static func occurrences(of n: [UInt8], in h: [UInt8], limit: Int = .max) -> [Range<Int>] {
        guard !n.isEmpty, n.count <= h.count else { return [] }
        var out: [Range<Int>] = []
        var i = 0
        let first = n[0], last = h.count - n.count
        h.withUnsafeBufferPointer { hb in
            n.withUnsafeBufferPointer { nb in
                while i <= last, out.count < limit {
                    if hb[i] == first, memcmp(hb.baseAddress! + i, nb.baseAddress!, n.count) == 0 { out.append(i..<(i + n.count)); i += n.count } else { i += 1 }
                }
            }
        }
        return out
    }

    /// `s.split(sep, maxsplit)` for a non-empty `sep` (a negative maxsplit: no limit).
    static func split(_ s: String, _ sep: String, maxsplit: Int = -1) -> [String] {
        let h = Array(s.utf8)
        var parts: [String] = [], start = 0
        for r in occurrences(of: Array(sep.utf8), in: h, limit: maxsplit < 0 ? .max : maxsplit) {
            parts.append(String(decoding: h[start..<r.lowerBound], as: UTF8.self))
            start = r.upperBound
        }
        parts.append(String(decoding: h[start...], as: UTF8.self))
        return parts
    }

    /// `s.split(None, maxsplit)`: runs of whitespace (Python's) cut, none kept at the ends; after `maxsplit` cuts the
    /// rest is one piece, its leading whitespace dropped and its trailing kept.
    static func splitWhitespace(_ s: String, maxsplit: Int = -1) -> [String] {
        let sc = Array(s.unicodeScalars)
        var parts: [String] = [], i = 0
        while true {
            while i < sc.count, ChatTemplate.isSpace(sc[i]) { i += 1 }
            guard i < sc.count else { break }
            if maxsplit >= 0 && parts.count == maxsplit {
                parts.append(String(String.UnicodeScalarView(sc[i...])))
                break
            }
            let start = i
            while i < sc.count, !ChatTemplate.isSpace(sc[i]) { i += 1 }
            parts.append(String(String.UnicodeScalarView(sc[start..<i])))
        }
        return parts
    }

    /// `s.replace(old, new, count)` for a non-empty `old` (a negative or absent count: every occurrence); nil when the
    /// result would pass `maxBytes`.
    static func replace(_ s: String, _ old: String, with new: String, count: Int? = nil, maxBytes: Int = .max) -> String? {
        let h = Array(s.utf8), add = Array(new.utf8)
        let found = occurrences(of: Array(old.utf8), in: h, limit: count.map { $0 < 0 ? .max : $0 } ?? .max)
        let size = h.count + found.count * (add.count - old.utf8.count)
        guard size <= maxBytes else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        var start = 0
        for r in found {
            out.append(contentsOf: h[start..<r.lowerBound])
            out.append(contentsOf: add)
            start = r.upperBound
        }
        out.append(contentsOf: h[start...])
        return String(decoding: out, as: UTF8.self)
    }

    /// `a < b` as Python compares strings: code point by code point.
    static func less(_ a: String, _ b: String) -> Bool { a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) }

    /// `repr(s)`: single quotes unless the text holds a single quote and no double one; backslash, the quote, \t \n \r
    /// escaped; other characters Python 3.11 (Unicode 14.0) does not print (controls, formats, separators but the
    /// space, private use, surrogates, unassigned) as \xhh, \uhhhh or \Uhhhhhhhh.
    static func repr(_ s: String) -> String {
        let quote: Unicode.Scalar = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"") ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for c in s.unicodeScalars {
            switch c {
            case quote, "\\": out.append("\\"); out.append(c)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            default:
                if printable(c) { out.append(c); continue }
                let v = c.value
                let e = v < 0x100 ? String(format: "\\x%02x", v) : v < 0x10000 ? String(format: "\\u%04x", v) : String(format: "\\U%08x", v)
                out.append(contentsOf: e.unicodeScalars)
            }
        }
        out.append(quote)
        return String(out)
    }

    /// Python 3.11's `str.isprintable` for one code point.
    static func printable(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x7F { return c.value >= 0x20 }
        if UnicodeNFC.isNewer(c, than: BertTokenizer.referenceUnicodeVersion) { return false }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator: return false
        default: return true
        }
    }
}
