import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels

/// Pretrained SmolLM2-135M-Instruct from its GGUF file against transformers' dequantised F32 model
/// (scripts/reference/make_smollm2_golden.py), the texts padded into one batch.
@Suite(.serialized) struct SmolLM2Tests {
    struct Case: Decodable { let text: String; let input_ids: [Int32]; let loss: Double }

    @Test func perExampleLossesEqualTransformers() throws {
        let gguf = Paths.repo.appendingPathComponent("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        #expect(FileManager.default.fileExists(atPath: gguf.path), "fetch SmolLM2 first: bash scripts/fetch-pretrained.sh smollm2")
        let lm = try LlamaForCausalLM(gguf: gguf)
        #expect(lm.config.numHiddenLayers == 30 && lm.config.numKeyValueHeads == 3 && lm.config.tieWordEmbeddings)
        let tok = try ByteLevelBPETokenizer(gguf: GGUFFile(url: gguf))
        let cases = try String(contentsOf: Paths.fixtures.appendingPathComponent("llama/smollm2-losses.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
        let encs = cases.map { tok.encode($0.text, pair: nil, maxLength: nil) }
        #expect(encs.map(\.inputIDs) == cases.map(\.input_ids))
        let batch = Batch(encodings: encs, labels: [Int32](repeating: -1, count: cases.count), indices: Array(cases.indices), padID: tok.padID)
        let (losses, _) = lm.sampleLosses(batch)
        for (c, l) in zip(cases, losses) {
            #expect(abs(l - c.loss) <= 1e-4 * c.loss, "\(c.text.prefix(40)): \(l) vs transformers \(c.loss)")
        }
    }
}
