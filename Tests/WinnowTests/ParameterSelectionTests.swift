import Foundation
import Testing
@testable import WinnowCore
@testable import WinnowModels

/// `--params` lists and prefixes resolved against a model's tensor names.
@Suite struct ParameterSelectionTests {
    /// A 12-layer decoder with a LoRA adapter on q_proj and a classification head.
    let layout: ParameterLayout = {
        var names = ["model.embed_tokens.weight"]
        for i in 0..<12 {
            names += ["model.layers.\(i).self_attn.q_proj.weight", "model.layers.\(i).self_attn.q_proj.lora_A.weight",
                      "model.layers.\(i).self_attn.q_proj.lora_B.weight", "model.layers.\(i).mlp.down_proj.weight"]
        }
        names += ["model.norm.weight", "score.weight"]
        return ParameterLayout(names: names, layerPrefixes: (0..<12).map { "model.layers.\($0)." },
                               embeddingPrefixes: ["model.embed_tokens."], headPrefixes: ["score."])
    }()

    func names(_ s: String) throws -> [String] { try ParameterSelection(try #require(ParameterSelection.Spec(parsing: s)), layout: layout).names }

    @Test func aKeywordInAListSelectsWhatItSelectsAlone() throws {
        #expect(try names("lora,classifier") == (try names("lora")) + ["score.weight"])
        #expect(try names("embeddings,model.norm") == ["model.embed_tokens.weight", "model.norm.weight"])
        #expect(try names("first-layer,last-layer") == (try names("first-layer")) + (try names("last-layer")))
        #expect(try names("all,model.norm") == layout.names)
        // An item that selects nothing is named, not skipped.
        #expect(throws: WinnowError.self) { try names("lora,nonsense.") }
    }

    @Test func aPrefixEndingInADigitEndsAtAComponent() throws {
        #expect(try names("model.layers.1") == (try names("model.layers.1.")))
        #expect(try names("model.layers.1").count == 4)
        // Prefixes inside a component still match as prefixes.
        #expect(try names("model.layers.1.self_attn.q_proj.lora_") == ["model.layers.1.self_attn.q_proj.lora_A.weight",
                                                                         "model.layers.1.self_attn.q_proj.lora_B.weight"])
    }
}
