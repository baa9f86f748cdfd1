import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData

/// Chat templates rendered as transformers' apply_chat_template renders them (scripts/reference/make_chat_template_golden.py):
/// real templates of Qwen2.5, Qwen3, Llama 3.x, Gemma 2, Phi-3.5, Mistral and others, eight conversations each.
@Suite struct ChatTemplateTests {
    struct Template: Decodable { let name: String; let template: String; let cases: [Case] }
    struct Case: Decodable { let messages: [[String]]?; let line: Int?; let add_generation_prompt: Bool; let output: String?; let error: String? }

    static let golden: [Template] = {
        let url = Paths.fixtures.appendingPathComponent("chat-templates/golden.json")
        return (try? JSONDecoder().decode([Template].self, from: Data(contentsOf: url))) ?? []
    }()
    /// Conversations as JSONL lines write them (tools, tool calls, reasoning, contents of parts, documents): a case's `line`.
    static let lines: [ChatMessages] = {
        let url = Paths.fixtures.appendingPathComponent("chat-templates/lines.jsonl")
        return ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? ChatMessages(jsonLine: Array($0.utf8)) }
    }()
    static let now = Calendar(identifier: .gregorian).date(from: DateComponents(timeZone: .current, year: 2026, month: 12, day: 7, hour: 9, minute: 5))!
    static let specials = ["bos_token": "<BOS>", "eos_token": "<EOS>", "unk_token": "<UNK>", "pad_token": "<PAD>"]

    @Test func realTemplatesRenderAsTransformers() throws {
        #expect(Self.golden.count > 20 && Self.lines.count == 16)
        var report: [String] = []
        var equal = 0, total = 0, refusedCases = 0
        for t in Self.golden {
            var bad: [String] = []
            let parsed: ChatTemplate
            total += t.cases.count
            do { parsed = try ChatTemplate(source: t.template) } catch {
                if !Self.refused.contains(t.name) { report.append("\(t.name): parse: \(error)") } else { refusedCases += t.cases.count }
                continue
            }
            for c in t.cases {
                let messages = c.line.map { Self.lines[$0] } ?? ChatMessages((c.messages ?? []).map { (role: $0[0], content: $0[1]) })
                do {
                    let got = try parsed.render(messages, addGenerationPrompt: c.add_generation_prompt, specialTokens: Self.specials, now: Self.now)
                    if let want = c.output, got.unicodeScalars.elementsEqual(want.unicodeScalars) { equal += 1 }
                    else if let want = c.output { bad.append("differs: got \(got.debugDescription.prefix(300)) want \(want.debugDescription.prefix(300))") }
                    else { bad.append("rendered where transformers raised \(c.error ?? "")") }
                } catch {
                    if c.error != nil { equal += 1 } else { bad.append("\(error)") }
                }
            }
            if Self.refused.contains(t.name) {
                // Refused for every conversation transformers renders (those it raises on count as equal).
                #expect(bad.count == t.cases.filter { $0.error == nil }.count && bad.allSatisfy { $0.hasPrefix("chat template line") }, "\(t.name): \(bad)")
                refusedCases += bad.count
            } else if !bad.isEmpty { report.append("\(t.name): \(bad.count) of \(t.cases.count): \(bad[0])") }
        }
        #expect(report.isEmpty, "\(equal) of \(total) equal; \(report.count) templates differ:\n\(report.joined(separator: "\n"))")
        #expect(equal + refusedCases == total && refusedCases <= Self.refused.count * 24, "\(equal) equal, \(refusedCases) refused of \(total)")
    }

    /// Jinja's own rules that real templates lean on, each with the text jinja2 3.1 (transformers' environment) writes,
    /// found by differential testing: a template's final line break dropped, CR and CRLF read as LF, chained
    /// comparisons, a sign binding before filters, `**` and exponents, a dict literal closing with `}}` inside
    /// `{{ }}`, Python's whitespace for trim, and an attribute of an undefined name raising.
    @Test func jinjaRulesAsJinja2() throws {
        func render(_ t: String) throws -> String {
            try ChatTemplate(source: t).render(messages: [("user", "u")], addGenerationPrompt: false, now: Self.now)
        }
        // Code point for code point (Swift's == would take "E\u{301}" for "\u{C9}").
        func same(_ got: String, _ want: String) -> Bool {
            if got.unicodeScalars.elementsEqual(want.unicodeScalars) { return true }
            Issue.record("got \(got.debugDescription), jinja2 \(want.debugDescription)")
            return false
        }
        #expect(try render("{% for m in messages %}{{ m.content }}{% endfor %}\n") == "u")
        #expect(try render("a\r\nb\rc") == "a\nb\nc")
        #expect(try render("{{ 3 > 2 > 1 }}|{{ 1 < 3 < 2 }}|{{ 'a' in 'cat' in ['x'] }}") == "True|False|False")
        #expect(try render("{{ -1|string|length }}|{{ -2**2 }}|{{ 2**10 }}|{{ 1e3 }}|{{ 2.5E-1 }}") == "2|4|1024|1000.0|0.25")
        #expect(try render("{{ {'a': {'b': 1}} }}") == "{'a': {'b': 1}}")
        #expect(try render("{{ '\u{1F}x\u{1C}'|trim }}|{{ ' a  b '.split() }}") == "x|['a', 'b']")
        #expect(throws: ChatTemplate.Failure.self) { try render("{{ nothing.attr }}") }
        #expect(throws: ChatTemplate.Failure.self) { try render("{% for i in range(100001) %}{% endfor %}") }
        #expect(try render("{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 1 / 2 }}|{{ 9223372036854775807 // 1 }}") == "3|-4|2|0.5|9223372036854775807")
        // Filters and methods templates use beyond the 70, each as jinja2 renders it.
        #expect(try render("{{ [1, 0, 2, none, 3]|select|list }}|{{ [1, 2, 3, 4]|reject('odd')|list }}|{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'c']|sort(reverse=true) }}")
                == "[1, 2, 3]|[2, 4]|[1, 2, 3]|['c', 'b', 'A']")
        let text = try render("{{ 'hello world'|title }}|{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 2.675|round(2) }}|{{ 3.5|round }}|{{ -3|abs }}")
        #expect(text == "Hello World|a\n  b\n\n  c|  a\n  b|2.67|4.0|3")
        #expect(try render("{{ [1, 2, 1, 3, 2]|unique|list }}|{{ 'a b  c'|wordcount }}|{{ 'a-b-c'.rsplit('-', 1) }}|{{ ', '.join(['x', 'y']) }}|{{ 'banana'.count('an') }}|{{ 'banana'.find('n') }}")
                == "[1, 2, 3]|3|['a-b', 'c']|x, y|2|2")
        #expect(try render("{{ [{'r': 'b'}, {'r': 'a'}]|sort(attribute='r')|map(attribute='r')|list }}") == "['a', 'b']")
        // map, select and their kin give generators: loops and filters read them, they are always true, tojson and
        // length raise (as in transformers), indexing gives undefined, printing one is refused (jinja2 writes an address).
        #expect(try render("{{ [1,2]|map('string')|list }}|{% if []|select %}yes{% endif %}|{{ [1,2]|select|join(',') }}|{{ ([1,2]|map('string'))[0] }}|{{ [1,2]|select|first }}|{% for x in [1,2,3]|reject('odd') %}{{ x }}{% endfor %}")
                == "['1', '2']|yes|1,2||1|2")
        for raising in ["{{ [1]|select|tojson }}", "{{ [1,2]|map('string')|length }}", "{{ [1,2]|select }}", "{{ 'x' in none }}", "{{ 1 in 2 }}"] {
            #expect(throws: ChatTemplate.Failure.self, "\(raising)") { try render(raising) }
        }
        #expect(try render("{{ [3,1,2]|min }}|{{ ['B','a','C']|max }}|{{ ['B','a','C']|max(case_sensitive=true) }}|{{ []|min }}|{{ [{'n': 2}, {'n': 1}]|min(attribute='n') }}")
                == "1|C|a||{'n': 1}")
        // Markup (|safe): + escapes the plain string on its other side; ~ joins plain text.
        #expect(try render(#"{{ '<a>'|safe + '<b>"&' + "'" }}|{{ 'x<' + 'y'|safe }}|{{ ('a'|safe + 'b<') ~ '<' }}"#) == "<a>&lt;b&gt;&#34;&amp;&#39;|x&lt;y|ab&lt;<")
        // A macro sees the top-level names as they are when it is called, not the caller's loop variables or names set
        // inside its loops; what it sets stays inside it.
        #expect(try render("{% macro m() %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }}|{% set x = 2 %}{{ m() }}|{% macro n() %}[{{ y }}]{% endmacro %}{% for y in [5] %}{{ n() }}{% set y = 3 %}{{ n() }}{% endfor %}|{% macro s() %}{% set x = 9 %}{% endmacro %}{{ s() }}{{ x }}|{% macro r() %}{{ messages[0].role }}{% endmacro %}{{ r() }}")
                == "1|2|[][]|2|user")
        // filter and with blocks, a set block through filters, loop.cycle.
        #expect(try render("{% filter upper|replace('A', '4') %}a{{ messages[0].content }}{% endfilter %}|{% with a = 1, b = 'x' %}{{ a }}{{ b }}{% set a = 5 %}{{ a }}{% endwith %}{{ a is defined }}|{% set s | trim | upper %}  hi {% endset %}{{ s }}|{% for i in range(5) %}{{ loop.cycle('o', 'e') }}{% endfor %}")
                == "4U|1x5False|HI|oeoeo")
        // Python's str and repr, transformers' tojson arguments, code points (not grapheme clusters), Undefined as
        // iterable, a dict's methods before its keys (each as jinja2 under transformers renders it).
        #expect(try same(render("{{ [\"it's\", 'say \"hi\"', 'both \\' and \"', \"a\\nb\\tc\\r\", \"\\u200b\\xa0\\x07\u{E9}\u{1F600}\\u2028\"] }}"),
                        "[\"it's\", 'say \"hi\"', 'both \\' and \"', 'a\\nb\\tc\\r', '\\u200b\\xa0\\x07\u{E9}\u{1F600}\\u2028']"))
        #expect(try same(render("{{ {\"k'\": 1, \"n\": \"x\\ny\"} }}"),
                        "{\"k'\": 1, 'n': 'x\\ny'}"))
        #expect(try same(render("{{ \"\u{E9}\u{1F600}<\"|tojson(true) }}|{{ {\"a\": [1, 2]}|tojson(ensure_ascii=true, indent=1) }}|{{ {\"b\": 1, \"a\": [1, 2]}|tojson(separators=(',', ':'), sort_keys=true) }}|{{ \"x\"|tojson(false, 2) }}"),
                        "\"\\u00e9\\ud83d\\ude00<\"|{\n \"a\": [\n  1,\n  2\n ]\n}|{\"a\":[1,2],\"b\":1}|\"x\""))
        #expect(try same(render("{{ \"a\\r\\nb\".split(\"\\n\") }}|{{ \"a\\r\\nb\".count(\"\\r\") }}|{{ \"a\\r\\nb\"|list }}|{{ \"e\\u0301x\".replace(\"e\", \"E\") }}|{{ \"e\" in \"e\\u0301\" }}|{{ \"a\\r\\nb\\r\\n\".rsplit(\"\\n\", 1) }}|{{ \"ab\\r\\n\"|reverse|list }}|{{ \"e\\u0301\".startswith(\"e\") }}"),
                        "['a\\r', 'b']|1|['a', '\\r', '\\n', 'b']|E\u{301}x|True|['a\\r\\nb\\r', '']|['\\n', '\\r', 'b', 'a']|True"))
        #expect(try same(render("{{ nothing is iterable }}|{{ nothing is sequence }}|{{ nothing is mapping }}"),
                        "True|True|False"))
        #expect(try same(render("{% set d = {\"items\": {\"type\": \"string\"}, \"type\": \"array\"} %}{{ d.items is defined }}|{{ d['items'].type }}|{{ d.items.type is defined }}|{{ d.type }}"),
                        "True|string|False|array"))
        #expect(try same(render("{{ \"b\" < \"a\\u0301\" }}|{{ [\"b\", \"B\", \"a\"]|sort }}|{{ \"x\".replace(\"x\", \"y\", 0) }}|{{ \"xxx\".replace(\"x\", \"y\", 2) }}"),
                        "False|['a', 'b', 'B']|x|yyx"))
        // Undefined through the filters that iterate (empty), split's maxsplit, reverse and unique as iterators.
        #expect(try same(render("{{ nothing|list }}|{{ nothing|length }}|{{ nothing|join(',') }}|{{ nothing|first }}|{{ nothing|sort }}|{{ nothing|unique|list }}|{{ nothing|select|list }}|{{ nothing|map('upper')|list }}|{{ 'a</think>b</think>c'.split('</think>', 1) }}|{{ ' a b  c '.split(none, 1) }}|{{ 'a,b,c'.split(',', -1) }}|{{ 'a,b,c'.split(',', 0) }}|{% for x in [1, 2]|reverse %}{{ x }}{% endfor %}"),
                        "[]|0|||[]|[]|[]|[]|['a', 'b</think>c']|['a', 'b  c ']|['a', 'b', 'c']|['a,b,c']|21"))
        for raising in ["{{ [1, 2]|reverse }}", "{{ [1, 2]|reverse|length }}", "{{ [1]|unique|tojson }}"] {
            #expect(throws: ChatTemplate.Failure.self, "\(raising)") { try render(raising) }
        }
        // Python's string escapes: \x, \u, \U, octal, \a.
        #expect(try render(#"{{ '\x41\u00e9\U0001F600\101\a|' }}"#) == "Aé😀A\u{7}|")
    }

    /// A JSONL line's messages as the template sees them: keys in the order written (a key written twice keeps its
    /// place and its last value), integers and floats apart, escapes and surrogate pairs read, null values dropped
    /// and the reasoning aliased as apply_chat_template does; malformed lines refused naming why.
    @Test func linesReachTheTemplateAsWritten() throws {
        let line = #"{"tools": [{"z": 1, "a": 2.50, "m": [true, null]}], "messages": [{"role": "user", "b": 1, "content": "x\u00e9\ud83d\ude00\ud800\n", "a": {"y": 1, "x": -2e3}, "b": 3, "gone": null}, {"role": "assistant", "content": null, "reasoning": "r"}]}"#
        let m = try ChatMessages(jsonLine: Array(line.utf8))
        #expect(m.count == 2 && m.roles == ["user", "assistant"])
        let t = try ChatTemplate(source: "{{ messages|tojson }}|{{ tools|tojson }}")
        #expect(try t.render(m, addGenerationPrompt: false)
                == #"[{"role": "user", "b": 3, "content": "xé😀\#u{FFFD}\n", "a": {"y": 1, "x": -2000.0}}, {"thinking": "r", "role": "assistant", "reasoning": "r", "reasoning_content": "r"}]|[{"z": 1, "a": 2.5, "m": [true, null]}]"#)
        #expect(try t.render(m.prefix(1), addGenerationPrompt: false).hasSuffix(#"|[{"z": 1, "a": 2.5, "m": [true, null]}]"#))
        // A message without content reads as one whose content is null (both without the key).
        let bare = try ChatMessages(jsonLine: Array(#"{"messages": [{"role": "assistant", "tool_calls": []}]}"#.utf8))
        #expect(try t.render(bare, addGenerationPrompt: false) == #"[{"role": "assistant", "tool_calls": []}]|null"#)
        for (bad, why) in [(#"{"messages": []}"#, "messages is not a non-empty list"), (#"[1]"#, "not a JSON object"),
                           (#"{"messages": [{"role": "user", "content": "x"}]} x"#, "text after its end"),
                           (#"{"messages": [{"role": "user", "content": "x"}] x"#, "',' or '}' expected"),
                           (#"{"messages": [{"role": "user", "content": "\q"}]}"#, "a malformed string"),
                           (#"{"messages": [{"role": "user", "content": "x", "n": 01}]}"#, "not a value"),
                           (String(repeating: "[", count: 70) + String(repeating: "]", count: 70), "nest more than 60 deep")] {
            #expect(throws: ChatMessages.Failure.self, "\(bad)") { _ = try ChatMessages(jsonLine: Array(bad.utf8)) }
            do { _ = try ChatMessages(jsonLine: Array(bad.utf8)) } catch { #expect("\(error)".contains(why), "\(bad): \(error)") }
        }
    }

    /// Templates using what Winnow does not implement (ByteDance-Seed-OSS compares an int with a string, which
    /// Python refuses too, but reaches it through integer dict keys, which Winnow's dicts do not hold): every
    /// conversation refused with the template's line, none rendered otherwise. (firefunction-v2, refused before set
    /// blocks took filters, now raises where transformers raises: on every conversation, for want of `functions`.)
    static let refused: Set<String> = ["ByteDance-Seed-OSS"]

    struct IDCase: Decodable {
        let tokenizer: String; let template: String; let special_tokens: [String: String]?; let messages: [[String]]?; let line: Int?
        let input_ids: [Int32]?; let scored: [Int]?; let error: String?; let not_located: Bool?
    }

    /// Messages through eight real templates with a byte-level and a SentencePiece tokenizer
    /// (scripts/reference/make_chat_ids_golden.py): ids equal apply_chat_template(tokenize=True)'s, and the
    /// scored tokens equal those found from the tokenizer's character offsets; a template that raises, or that
    /// writes earlier turns otherwise once the conversation goes on, is refused naming why.
    @Test func messagesEncodeAsApplyChatTemplate() throws {
        let cases = try JSONDecoder().decode([IDCase].self, from: Data(contentsOf: Paths.fixtures.appendingPathComponent("chat-templates/ids.json")))
        let templates = Dictionary(uniqueKeysWithValues: Self.golden.map { ($0.name, $0.template) })
        #expect(cases.count == 288 && cases.filter { $0.input_ids != nil }.count >= 190 && cases.filter { $0.line != nil && $0.input_ids != nil }.count >= 100)
        let lines = try String(contentsOf: Paths.fixtures.appendingPathComponent("chat-templates/lines.jsonl"), encoding: .utf8).split(separator: "\n")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("chat-ids-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("chat.jsonl")
        for c in cases {
            let tok = try Tokenizers.decoder(folder: Paths.repo.appendingPathComponent(c.tokenizer))
            let template = DecoderTemplate(eosID: nil, chatTemplate: templates[c.template], specialTokens: c.special_tokens ?? [:], now: Self.now)
            let enc = DecoderEncoder(tokenizer: tok, template: template, maxLength: 4096)
            let ex: Example
            if let k = c.line {
                try String(lines[k]).write(to: url, atomically: true, encoding: .utf8)
                ex = try JSONLDataset(url: url, requireLabels: false).examples[0]
                #expect(ex.chatMessages != nil)
            } else {
                var e = Example(line: 1)
                e.messages = (c.messages ?? []).map { (role: $0[0], content: $0[1]) }
                ex = e
            }
            let what = "\(c.template) with \(c.tokenizer) on \(c.line.map { "line \($0)" } ?? "\((c.messages ?? []).map { $0[0] })")"
            do {
                let e = try enc.encode(ex, url: url)
                #expect(e.ids == c.input_ids ?? [], "\(what): ids")
                // The first token is never scored (nothing predicts it).
                var want = (c.scored ?? []).map { $0 == 1 }
                if !want.isEmpty { want[0] = false }
                #expect(e.scored == want, "\(what): scored \(e.scored.enumerated().filter { $0.1 != want[$0.0] }.map(\.offset))")
            } catch let error as WinnowError {
                let message = error.description
                if c.error != nil {
                    #expect(message.contains("chat.jsonl:1: holds messages the model's chat template does not render"), "\(what): \(message)")
                } else if c.not_located == true {
                    #expect(message.contains("differently once it goes on"), "\(what): \(message)")
                } else {
                    Issue.record("\(what): \(message)")
                }
            }
        }
    }
}
