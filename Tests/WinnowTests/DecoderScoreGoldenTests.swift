import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowScores

/// Decoder scores against PyTorch autograd, one example at a time (scripts/reference/make_decoder_score_golden.py):
/// tiny Llamas with tied and untied output layers and a real byte-level BPE tokenizer, on text,
/// prompt + completion and ChatML messages. Winnow scores in padded batches of 4.
@Suite struct DecoderScoreGoldenTests {
    static let dir = Paths.fixtures.appendingPathComponent("decoder")
    struct Row: Decodable { let ids: [Int32]; let scored: [Bool]; let loss: Double; let el2n: Double; let sq_norm: [String: Double] }
    struct Model: Decodable {
        let text, pc, chat: [Row]
        /// Gradient dot products [pc example][text example] by selection.
        let dots_pc_text: [String: [[Double]]]
        func rows(_ file: String) -> [Row]? { file == "text" ? text : file == "pc" ? pc : file == "chat" ? chat : nil }
    }
    let golden: [String: Model]

    init() throws {
        golden = try JSONDecoder().decode([String: Model].self, from: Data(contentsOf: Self.dir.appendingPathComponent("golden.json")))
    }

    func options(_ params: String = "all") -> ScoreOptions {
        var o = ScoreOptions()
        o.maxLength = 160
        o.batchSize = 4
        o.params = ParameterSelection.Spec(parsing: params)!
        return o
    }

    /// Relative error within `rtol` everywhere (values below `floor` compared absolutely), and Spearman >= 0.999.
    func expectMatch(_ got: [Double], _ want: [Double], rtol: Double, floor: Double = 1e-6, _ what: String) {
        #expect(got.count == want.count, "\(what): \(got.count) scores, \(want.count) expected")
        for (i, (g, w)) in zip(got, want).enumerated() {
            #expect(abs(g - w) <= rtol * max(abs(w), floor), "\(what) example \(i): \(g) vs \(w)")
        }
        if want.count > 2 { #expect(Statistics.spearman(got, want) >= 0.999, "\(what): Spearman") }
    }

    @Test(arguments: ["text", "pc", "chat"])
    func encodingsMatchTheReference(file: String) throws {
        let url = Self.dir.appendingPathComponent(file + ".jsonl")
        let encoder = try DecoderEncoder(folder: Self.dir.appendingPathComponent("tied"), maxLength: 160)
        let examples = try JSONLDataset(url: url, requireLabels: false).examples
        for (ex, row) in zip(examples, golden["tied"]!.rows(file)!) {
            let e = try encoder.encode(ex, url: url)
            #expect(e.ids == row.ids, "\(file) line \(ex.line): ids")
            #expect(e.scored == row.scored, "\(file) line \(ex.line): scored tokens")
        }
    }

    @Test(arguments: ["tied", "untied"], ["text", "pc", "chat"])
    func lossAndEL2NMatchPyTorch(model: String, file: String) throws {
        let want = golden[model]!.rows(file)!
        let run = Self.dir.appendingPathComponent(model), data = Self.dir.appendingPathComponent(file + ".jsonl")
        let loss = try Scorer.score(.loss, run: run, data: data, options: options())
        expectMatch(loss.scores, want.map(\.loss), rtol: 1e-4, "\(model) \(file) loss")
        let el2n = try Scorer.score(.el2n, run: run, data: data, options: options())
        expectMatch(el2n.scores, want.map(\.el2n), rtol: 1e-4, "\(model) \(file) el2n")
        #expect(el2n.components.first { $0.0 == "tokens" }?.1 == want.map { Double($0.scored.filter { $0 }.count) })
    }

    @Test(arguments: ["tied", "untied"], ["all", "first-layer", "last-layer", "embeddings", "model.layers.1.mlp."])
    func gradientNormsMatchPyTorch(model: String, params: String) throws {
        let run = Self.dir.appendingPathComponent(model)
        for file in ["text", "pc", "chat"] {
            let want = golden[model]!.rows(file)!.map { $0.sq_norm[params]! }
            let data = Self.dir.appendingPathComponent(file + ".jsonl")
            let grand = try Scorer.score(.grand, run: run, data: data, options: options(params))
            expectMatch(grand.scores, want.map { $0.squareRoot() }, rtol: 1e-3, "\(model) \(file) grand --params \(params)")
            let tracin = try Scorer.score(.tracin, run: run, data: data, options: options(params))
            expectMatch(tracin.scores, want, rtol: 2e-3, "\(model) \(file) tracin --params \(params)")
        }
    }

    @Test(arguments: ["all", "last-layer"])
    func lengthNeutralScoresScaleByTheTargetTokens(params: String) throws {
        // PyTorch's squared norms times each example's scored-token count n (GraNd: the norm times sqrt(n)).
        let run = Self.dir.appendingPathComponent("untied")
        var o = options(params)
        o.lengthNeutral = true
        for file in ["text", "pc"] {
            let rows = golden["untied"]!.rows(file)!
            let n = rows.map { Double($0.scored.filter { $0 }.count) }
            let want = zip(rows, n).map { $0.sq_norm[params]! * $1 }
            let data = Self.dir.appendingPathComponent(file + ".jsonl")
            expectMatch(try Scorer.score(.tracin, run: run, data: data, options: o).scores, want, rtol: 2e-3, "\(file) tracin --length-neutral")
            expectMatch(try Scorer.score(.grand, run: run, data: data, options: o).scores, want.map { $0.squareRoot() }, rtol: 1e-3,
                        "\(file) grand --length-neutral")
            #expect(Set(n).count > 1, "\(file): the examples differ in length, so the scaling is seen")
        }
        #expect(throws: WinnowError.self) { try Scorer.score(.loss, run: run, data: Self.dir.appendingPathComponent("text.jsonl"), options: o) }
    }

    @Test(arguments: ["tied", "untied"], ["all", "last-layer"])
    func trainToTestMatchesPyTorch(model: String, params: String) throws {
        let g = golden[model]!
        let want = g.dots_pc_text[params]!
        let sq = { (rows: [Row]) in rows.map { $0.sq_norm[params]! } }
        let testSq = sq(g.pc), trainSq = sq(g.text)
        let run = Self.dir.appendingPathComponent(model)
        for similarity in Similarity.allCases {
            // Through the entry point for every family (it opens the decoder and dispatches to DecoderScores).
            let influence = try TargetInfluence.matrix(run: run, train: Self.dir.appendingPathComponent("text.jsonl"),
                                                       test: Self.dir.appendingPathComponent("pc.jsonl"), options: options(params),
                                                       similarity: similarity)
            let (m, train, test) = (influence.matrix, influence.train, influence.test)
            #expect(m.count == want.count && train.count == trainSq.count && test.count == testSq.count)
            for i in want.indices {
                for j in want[i].indices {
                    let scale = (testSq[i] * trainSq[j]).squareRoot()
                    let expected = similarity == .dot ? want[i][j] : want[i][j] / scale
                    let tol = similarity == .dot ? 2e-3 * scale : 2e-3
                    #expect(abs(Double(m[i][j]) - expected) <= tol, "\(model) \(params) \(similarity) [\(i)][\(j)]: \(m[i][j]) vs \(expected)")
                }
            }
        }
    }

    @Test func targetInfluenceAggregates() throws {
        let m: [[Float]] = [[1, 2, 3], [3, 0, 1], [5, 4, -1]]
        #expect(try TargetInfluence.aggregate(m, mode: .mean) == [3, 2, 1])
        #expect(try TargetInfluence.aggregate(m, mode: .max) == [5, 4, 3])
        // Groups a = rows 0 and 1 (means 2, 1, 2), b = row 2: max over groups, mean over groups.
        #expect(try TargetInfluence.aggregate(m, groups: ["a", "a", "b"], mode: .max) == [5, 4, 2])
        #expect(try TargetInfluence.aggregate(m, groups: ["a", "a", "b"], mode: .mean) == [3.5, 2.5, 0.5])
    }

    @Test func projectedSelfInfluenceKeepsTheOrder() throws {
        // A random projection of the tied table's gradient (embedding and output parts together) keeps
        // the ranking of the exact self-influence on these examples.
        var o = options()
        o.projectDim = 4096
        let run = Self.dir.appendingPathComponent("tied"), data = Self.dir.appendingPathComponent("text.jsonl")
        let exact = try Scorer.score(.tracin, run: run, data: data, options: options()).scores
        let projected = try Scorer.score(.tracin, run: run, data: data, options: o).scores
        #expect(Statistics.spearman(exact, projected) >= 0.9, "projected vs exact: \(projected) \(exact)")
        for (p, e) in zip(projected, exact) { #expect(abs(p - e) <= 0.5 * e) }
    }

    @Test func badDecoderInputGetsOneClearError() throws {
        let folder = Self.dir.appendingPathComponent("tied")
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("decoder-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        func error(_ line: String, maxLength: Int = 160, template: DecoderTemplate? = nil) throws -> String {
            let url = tmp.appendingPathComponent("d.jsonl")
            try (line + "\n").write(to: url, atomically: true, encoding: .utf8)
            var encoder = try DecoderEncoder(folder: folder, maxLength: maxLength)
            if let template { encoder = DecoderEncoder(tokenizer: try #require(encoder.tokenizer), template: template, maxLength: maxLength) }
            let ex = try JSONLDataset(url: url, requireLabels: false).examples[0]
            do { _ = try encoder.encode(ex, url: url) } catch { return "\(error)" }
            return ""
        }
        let long = try error(#"{"prompt": "a long prompt of many characters", "completion": " x"}"#, maxLength: 8)
        #expect(long.contains("d.jsonl:1: the prompt is") && long.contains("leaves no completion token"), "\(long)")
        let undefined = try error(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}"#,
                                  template: DecoderTemplate(eosID: 3, chatTemplate: "{{ bos_token }}[INST] {{ message['content'] }} [/INST]"))
        // An attribute of an undefined name raises, as in Jinja.
        #expect(undefined.contains("d.jsonl:1: holds messages the model's chat template does not render (chat template line 1: an undefined value has no attribute or item 'content')"), "\(undefined)")
        // A template that never writes the assistant's messages: nothing to score, refused naming the turn.
        let nothing = try error(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}"#,
                                template: DecoderTemplate(eosID: 3, chatTemplate: "{% for m in messages if m.role != 'assistant' %}{{ m.content }}{% endfor %}"))
        #expect(nothing.contains("d.jsonl:1: holds messages, but the model's chat template writes nothing for assistant turn 1"), "\(nothing)")
        // A conversation that opens with the assistant: the template cannot render what comes before it (messages[0] of none).
        let first = try error(#"{"messages": [{"role": "assistant", "content": "yo"}, {"role": "user", "content": "hi"}]}"#,
                              template: DecoderTemplate(eosID: 3, chatTemplate: "{{ messages[0]['role'] }}{% for m in messages %}{{ m.content }}{% endfor %}"))
        #expect(first.contains("d.jsonl:1: holds messages whose assistant turn 1 cannot be located"), "\(first)")
        // Every key of a message reaches the template (here one that raises without it).
        let extra = try error(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "reasoning_content": "think"}]}"#,
                              template: DecoderTemplate(eosID: 3, chatTemplate: "{% for m in messages %}{{ m.reasoning_content.strip() if m.role == 'assistant' }}{{ m.content }}{% endfor %}"))
        #expect(extra == "", "\(extra)")
        let raising = try error(#"{"messages": [{"role": "assistant", "content": "yo"}]}"#,
                                template: DecoderTemplate(eosID: 3, chatTemplate: "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations start with a user turn') }}{% endif %}"))
        #expect(raising.contains("d.jsonl:1: holds messages the model's chat template does not render (chat template line 1: the template raised an exception: Conversations start with a user turn)"), "\(raising)")
        let unread = try error(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}"#,
                               template: DecoderTemplate(eosID: 3, chatTemplate: "{% for m in messages %}\n{% call upper() %}{{ m.content }}{% endcall %}{% endfor %}"))
        #expect(unread.contains("the model's chat template cannot be read (chat template line 2: 'call' is not a statement"), "\(unread)")
        let noAssistant = try error(#"{"messages": [{"role": "user", "content": "hi"}]}"#)
        #expect(noAssistant.contains("no assistant turn"), "\(noAssistant)")
        let badMessage = tmp.appendingPathComponent("m.jsonl")
        for (line, message) in [(#"{"messages": [{"content": "hi"}]}"#, "m.jsonl:1: messages[0] is not an object with a string 'role'"),
                                (#"{"messages": [{"role": "user", "content": 3}]}"#, "m.jsonl:1: messages[0]: 'content' is not a string, null or a list of parts"),
                                (#"{"messages": [{"role": "user", "content": "hi"}], "tools": "get_weather"}"#, "m.jsonl:1: tools is not a list"),
                                (#"{"messages": [{"role": "user", "content": "hi"}], "tools": [1]}"#, "m.jsonl:1: tools[0] is not an object"),
                                (#"{"messages": [{"role": "user", "content": "hi", "n": 123456789012345678901234}]}"#, "m.jsonl:1: the integer 123456789012345678901234 is beyond a signed 64-bit integer")] {
            try line.write(to: badMessage, atomically: true, encoding: .utf8)
            #expect(throws: WinnowError.self) { _ = try JSONLDataset(url: badMessage, requireLabels: false) }
            do { _ = try JSONLDataset(url: badMessage, requireLabels: false) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }
}
