import Foundation
import WinnowCore

// The per-code-point character classes of transformers' slow BertTokenizer (tokenization_utils.py and
// models/bert/tokenization_bert.py, transformers 4.57). Python iterates code points, so everything here works on
// Unicode.Scalar, never on Character (a grapheme cluster). ASCII is answered from a table; other scalars ask the
// standard library's Unicode properties.

// MARK: - Unicode version

extension BertTokenizer {
    /// The Unicode version of the Python that defines the reference behaviour: Python 3.11's `unicodedata` is
    /// Unicode 14.0, and there every scalar assigned later has category `Cn`, which `_clean_text` drops. Swift's
    /// tables are newer (17.0 in Swift 6.3), so scalars younger than this are dropped here too. Checked against
    /// Python 3.11 over all code points: category, lower(), NFD and NFC agree for every scalar of Unicode <= 14.0
    /// except U+0295 (Ll vs Lo, harmless here) and U+1171E (Mn in 14.0, Mc now), which `stripAccents` special-cases.
    static let referenceUnicodeVersion: Unicode.Version = (major: 14, minor: 0)
}

// MARK: - Character classes

/// Bit flags of the ASCII class table.
private enum ASCIIClass {
    static let control: UInt8 = 1       // Cc other than \t \n \r: dropped by _clean_text
    static let whitespace: UInt8 = 2    // ' ' \t \n \r: mapped to ' ' by _clean_text
    static let punctuation: UInt8 = 4   // 33-47, 58-64, 91-96, 123-126: split off by _run_split_on_punc

    static let table: [UInt8] = (0..<128).map { (v: Int) -> UInt8 in
        var c: UInt8 = 0
        if (v < 0x20 && v != 0x09 && v != 0x0A && v != 0x0D) || v == 0x7F { c |= control }
        if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D { c |= whitespace }
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            c |= punctuation
        }
        return c
    }
}

extension Unicode.Scalar {
    /// `_clean_text` drops this scalar: U+0000, U+FFFD, and every category C* (Cc, Cf, Cs, Co, Cn) except
    /// \t \n \r. Scalars newer than `BertTokenizer.referenceUnicodeVersion` count as Cn.
    @inline(__always)
    var bertIsDropped: Bool {
        if value < 0x80 { return ASCIIClass.table[Int(value)] & ASCIIClass.control != 0 }
        if value == 0xFFFD { return true }
        switch properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned:
            return true
        default:
            guard let age = properties.age else { return true }
            return age > BertTokenizer.referenceUnicodeVersion
        }
    }

    /// `_is_whitespace`: ' ', \t, \n, \r and category Zs; `_clean_text` maps these to ' '.
    @inline(__always)
    var bertIsWhitespace: Bool {
        if value < 0x80 { return ASCIIClass.table[Int(value)] & ASCIIClass.whitespace != 0 }
        return properties.generalCategory == .spaceSeparator
    }

    /// `_is_punctuation`: all non-alphanumeric printable ASCII, plus Unicode categories P*.
    @inline(__always)
    var bertIsPunctuation: Bool {
        if value < 0x80 { return ASCIIClass.table[Int(value)] & ASCIIClass.punctuation != 0 }
        switch properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana), which
    /// `_tokenize_chinese_chars` surrounds with spaces.
    @inline(__always)
    var bertIsCJK: Bool {
        let v = value
        if v < 0x3400 { return false }
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v)
            || (0x20000...0x2A6DF).contains(v) || (0x2A700...0x2B73F).contains(v)
            || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// Python's `str.isspace()`, which `str.split()` splits on. After `_clean_text` only ' ', U+2028 and U+2029
    /// can remain of these; the full list keeps the split honest anyway.
    @inline(__always)
    var pythonIsSpace: Bool {
        switch value {
        case 0x20, 0x09...0x0D, 0x1C...0x1F, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F,
             0x3000:
            return true
        default:
            return false
        }
    }
}

// MARK: - Case mapping and normalisation

extension BertTokenizer {
    /// `unicodedata.normalize("NFC", ...)`. Scalars below U+0300 are NFC-stable and never compose with one
    /// another, so such text is returned as it is.
    static func nfc(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        UnicodeNFC.compose(scalars[...], asOf: referenceUnicodeVersion)
    }

    /// `_run_strip_accents`: NFD, then drop every nonspacing mark (category Mn). Scalars below U+00C0 have no
    /// canonical decomposition and none is Mn, so such words skip the normaliser.
    static func stripAccents(_ word: ArraySlice<Unicode.Scalar>, into out: inout [Unicode.Scalar]) {
        out.removeAll(keepingCapacity: true)
        guard word.contains(where: { $0.value >= 0xC0 }) else {
            out.append(contentsOf: word)
            return
        }
        let decomposed = String(String.UnicodeScalarView(word)).decomposedStringWithCanonicalMapping
        for s in decomposed.unicodeScalars where s.properties.generalCategory != .nonspacingMark {
            if s.value == 0x1171E { continue }  // AHOM CONSONANT SIGN MEDIAL RA: Mn in Unicode 14.0, Mc since
            out.append(s)
        }
    }
}

// MARK: - NFC as of a Unicode version

/// Unicode NFC as a normaliser built on an older version's tables composes text. A normaliser knows nothing of
/// scalars assigned after its tables: they are starters (combining class 0) that neither decompose nor compose.
/// Swift's own tables are newer (17.0 in Swift 6.3), and a combining mark it knows reorders and blocks marks
/// around it where the older normaliser leaves them be: Python 3.11's `unicodedata` is Unicode 14.0, and
/// `tokenizers`' `NFC` normaliser (the `unicode-normalization-alignments` crate) is Unicode 9.0, which leaves
/// out some 100 marks since (U+1DF6..U+1DFA, Telugu's nukta U+0C3C, Arabic's U+0898..U+08D3...) and
/// U+11938's composition.
///
/// Text is cut at every scalar younger than the version: NFC(A x B) is NFC(A) x NFC(B) when x is a starter that
/// composes with nothing, and no scalar younger than 9.0 or 14.0 decomposes into older scalars only (checked
/// over all code points with Swift 6.3's tables), so each piece's NFC by today's tables is the older one's.
/// Checked against `tokenizers.normalizers.NFC` (`ByteLevelBPETests`) and Python's `unicodedata`.
enum UnicodeNFC {
    /// `tokenizers`' `NFC` normaliser: the `unicode-normalization-alignments` crate's Unicode 9.0 tables.
    static let tokenizersVersion: Unicode.Version = (major: 9, minor: 0)

    /// The scalars of `s` in NFC as of `version`. Text below U+0300 is NFC-stable and comes back as it is.
    static func compose(_ s: ArraySlice<Unicode.Scalar>, asOf version: Unicode.Version) -> [Unicode.Scalar] {
        guard s.contains(where: { $0.value >= 0x300 }) else { return Array(s) }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var start = s.startIndex
        for i in s.indices where s[i].value >= 0x300 && isNewer(s[i], than: version) {
            appendComposed(s[start..<i], to: &out)
            out.append(s[i])
            start = i + 1
        }
        appendComposed(s[start...], to: &out)
        return out
    }

    /// Whether `s` was assigned after `version` (unassigned scalars are starters that compose with nothing in
    /// every version: the same either way).
    static func isNewer(_ s: Unicode.Scalar, than version: Unicode.Version) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major > version.major || (age.major == version.major && age.minor > version.minor)
    }

    private static func appendComposed(_ s: ArraySlice<Unicode.Scalar>, to out: inout [Unicode.Scalar]) {
        guard s.contains(where: { $0.value >= 0x300 }) else { return out.append(contentsOf: s) }
        out.append(contentsOf: String(String.UnicodeScalarView(s)).precomposedStringWithCanonicalMapping.unicodeScalars)
    }
}
