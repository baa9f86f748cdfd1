import Foundation
import Testing
@testable import WinnowData

/// NFC as the references compose (scripts/reference/make_nfc_golden.py): `tokenizers`' NFC normalizer (Qwen2's;
/// Unicode 9.0 tables) and Python 3.11's `unicodedata` (Unicode 14.0; the slow BertTokenizer's). Swift's tables are
/// newer, and the marks added since reorder and block other marks where the references leave them be.
@Suite struct UnicodeNFCTests {
    static func cases(_ name: String) throws -> [(input: [Unicode.Scalar], nfc: [Unicode.Scalar])] {
        let url = Paths.fixtures.appendingPathComponent("tokenizer/nfc/\(name).tsv")
        func scalars(_ s: Substring) -> [Unicode.Scalar] { s.split(separator: " ").map { Unicode.Scalar(UInt32($0, radix: 16)!)! } }
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            let f = $0.split(separator: "\t")
            return (scalars(f[0]), scalars(f[1]))
        }
    }

    static func hex(_ s: [Unicode.Scalar]) -> String { s.map { String($0.value, radix: 16, uppercase: true) }.joined(separator: " ") }

    @Test func composesAsTokenizers() throws {
        let cases = try Self.cases("tokenizers")
        #expect(cases.count > 3000)
        var wrong = 0, newerDiffers = 0
        for c in cases {
            let got = UnicodeNFC.compose(c.input[...], asOf: UnicodeNFC.tokenizersVersion)
            if got != c.nfc {
                wrong += 1
                if wrong <= 5 { Issue.record("\(Self.hex(c.input)): got \(Self.hex(got)), tokenizers \(Self.hex(c.nfc))") }
            }
            let today = Array(String(String.UnicodeScalarView(c.input)).precomposedStringWithCanonicalMapping.unicodeScalars)
            if today != c.nfc { newerDiffers += 1 }
        }
        #expect(wrong == 0, "\(wrong) of \(cases.count) cases differ")
        // The fixture holds the cases where today's tables compose otherwise (the test would catch their return).
        #expect(newerDiffers > 800)
    }

    @Test func composesAsPython() throws {
        let cases = try Self.cases("python")
        var wrong = 0
        for c in cases where BertTokenizer.nfc(c.input) != c.nfc {
            wrong += 1
            if wrong <= 5 { Issue.record("\(Self.hex(c.input)): got \(Self.hex(BertTokenizer.nfc(c.input))), Python \(Self.hex(c.nfc))") }
        }
        #expect(wrong == 0, "\(wrong) of \(cases.count) cases differ")
    }

    @Test func knownCases() {
        func nfc(_ s: String, _ v: Unicode.Version) -> String {
            String(String.UnicodeScalarView(UnicodeNFC.compose(Array(s.unicodeScalars)[...], asOf: v)))
        }
        // U+1DFA (Unicode 14.0) is a starter to tokenizers: U+0300 after it cannot reach the "a".
        #expect(nfc("a\u{1DFA}\u{300}", UnicodeNFC.tokenizersVersion).unicodeScalars.map(\.value) == [0x61, 0x1DFA, 0x300])
        #expect(nfc("a\u{1DFA}\u{300}", (major: 14, minor: 0)).unicodeScalars.map(\.value) == [0xE0, 0x1DFA])
        // U+11938 (Unicode 13.0) composes only with tables that know it.
        #expect(nfc("\u{11935}\u{11930}", UnicodeNFC.tokenizersVersion).unicodeScalars.map(\.value) == [0x11935, 0x11930])
        #expect(nfc("\u{11935}\u{11930}", (major: 14, minor: 0)).unicodeScalars.map(\.value) == [0x11938])
        #expect(nfc("cafe\u{301}", UnicodeNFC.tokenizersVersion) == "café")
        #expect(nfc("plain ascii", UnicodeNFC.tokenizersVersion) == "plain ascii")
    }
}
