//! Huffman decoding (RFC 7541 §5.2 and Appendix B).
//!
//! The HPACK code is canonical: the codes of one bit length are consecutive integers and
//! every code of length `n` sorts (left-justified) below every code of length `n + 1`. So a
//! 30-bit window of input, compared against one "limit" per length, tells the length of the
//! next code, and its offset from the first code of that length gives the symbol. All the
//! tables are computed at compile time from the 257 (code, length) pairs, and the build
//! fails if the pairs are not canonical, so decoding never needs a fallible lookup that
//! could actually fail.

use super::DecodeError;

/// Number of symbols: 256 octets plus EOS.
const SYMBOLS: usize = 257;
/// The end-of-string symbol, which must never appear in decoded data (RFC 7541 §5.2).
const EOS: u16 = 256;
/// Shortest code length ('0'-'2', 'a', 'c', 'e', 'i', 'o', 's', 't').
const MIN_LEN: usize = 5;
/// Longest code length (EOS and a few control octets).
const MAX_LEN: usize = 30;
/// Mask of a 30-bit window.
const WINDOW_MASK: u64 = (1 << MAX_LEN) - 1;
/// Longest padding allowed at the end of a string (RFC 7541 §5.2).
const MAX_PADDING: u32 = 7;

// Codes from RFC 7541 Appendix B, as generated in the h2 crate (MIT licensed,
// src/hpack/huffman/table.rs, ENCODE_CODES / ENCODE_CODE_LENGTHS), with EOS appended.

/// The code of each symbol, right-aligned; index 256 is EOS.
#[rustfmt::skip]
const CODES: [u32; SYMBOLS] = [
    0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, 0xfffffe8,
    0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec, 0xfffffed, 0xfffffee,
    0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3, 0xffffff4, 0xffffff5, 0xffffff6,
    0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb, 0x14, 0x3f8, 0x3f9, 0xffa,
    0x1ff9, 0x15, 0xf8, 0x7fa, 0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa,
    0x16, 0x17, 0x18, 0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b,
    0x1c, 0x1d, 0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb,
    0x3fc, 0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b,
    0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0xfc, 0x73,
    0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22, 0x7ffd, 0x3, 0x23,
    0x4, 0x24, 0x5, 0x25, 0x26, 0x27, 0x6, 0x74, 0x75,
    0x28, 0x29, 0x2a, 0x7, 0x2b, 0x76, 0x2c, 0x8, 0x9,
    0x2d, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd,
    0x1ffd, 0xffffffc, 0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5,
    0x7fffd9, 0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
    0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3, 0x7fffe4,
    0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef, 0x3fffda, 0x1fffdd,
    0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde, 0x7fffea, 0x3fffdd, 0x3fffde,
    0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec, 0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2,
    0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef, 0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0,
    0x3fffe5, 0x3fffe6, 0x7ffff1, 0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2,
    0x3fffe8, 0x1ffffec, 0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1,
    0x1ffffed, 0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
    0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5, 0xfffec,
    0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3, 0x3fffea, 0x3fffeb,
    0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4, 0x3ffffeb, 0x7ffffe6, 0x3ffffec,
    0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea, 0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed,
    0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee, 0x3fffffff,
];

/// The bit length of each symbol's code; index 256 is EOS.
#[rustfmt::skip]
const LENS: [u8; SYMBOLS] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7,
    7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
    23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
    21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/// Decoding tables derived from `CODES` / `LENS`, indexed by code length.
struct Canonical {
    /// One past the last code of each length, left-justified to 30 bits. Non-decreasing, and
    /// `limit[MAX_LEN] == 1 << 30`, so every 30-bit window is below some limit.
    limit: [u32; MAX_LEN + 1],
    /// The first (smallest) code of each length.
    first: [u32; MAX_LEN + 1],
    /// Index into `symbols` of the first code of each length.
    offset: [u16; MAX_LEN + 1],
    /// Symbols sorted by (length, code).
    symbols: [u16; SYMBOLS],
}

/// Built at compile time; a `static` so the arrays exist once rather than per use.
static TABLE: Canonical = build();

/// Derives the canonical tables, panicking at compile time if the code is not canonical
/// and complete (which would make the window lookup wrong).
const fn build() -> Canonical {
    let mut count = [0u32; MAX_LEN + 1];
    let mut s = 0;
    while s < SYMBOLS {
        count[LENS[s] as usize] += 1;
        s += 1;
    }
    let mut t = Canonical {
        limit: [0; MAX_LEN + 1],
        first: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        symbols: [u16::MAX; SYMBOLS],
    };
    // The canonical first code of each length (as in RFC 1951 §3.2.2).
    let mut code = 0u32;
    let mut offset = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        code = (code + count[len - 1]) << 1;
        t.first[len] = code;
        t.offset[len] = offset as u16;
        t.limit[len] = (code + count[len]) << (MAX_LEN - len);
        offset += count[len];
        len += 1;
    }
    assert!(
        t.limit[MAX_LEN] == 1 << MAX_LEN,
        "huffman code is not complete"
    );
    let mut s = 0;
    while s < SYMBOLS {
        let len = LENS[s] as usize;
        assert!(CODES[s] >= t.first[len], "huffman code is not canonical");
        let rank = CODES[s] - t.first[len];
        assert!(rank < count[len], "huffman code is not canonical");
        let slot = t.offset[len] as usize + rank as usize;
        assert!(t.symbols[slot] == u16::MAX, "duplicate huffman code");
        t.symbols[slot] = s as u16;
        s += 1;
    }
    t
}

/// Decodes a Huffman-coded string, validating the padding and rejecting EOS.
pub(super) fn decode(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
    // The shortest code is 5 bits, so this bounds the output and avoids regrowth.
    let mut out = Vec::with_capacity(src.len() * 8 / 5);
    let mut input = src.iter();
    // `acc` holds `bits` pending input bits in its low end; refilling keeps it above 56
    // bits until the input runs out, so a window shorter than 30 bits means "at the end".
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    loop {
        while bits <= 56 {
            let Some(&byte) = input.next() else { break };
            acc = (acc << 8) | u64::from(byte);
            bits += 8;
        }
        if bits == 0 {
            return Ok(out);
        }
        let window = window(acc, bits);
        let len = code_len(window)?;
        if len > bits {
            // The remaining bits are no complete code: they must be valid padding.
            return check_padding(acc, bits).map(|()| out);
        }
        match symbol(window, len)? {
            EOS => return Err(DecodeError::InvalidHuffman),
            sym => out.push(sym as u8),
        }
        bits -= len;
    }
}

/// The next 30 bits of input, left-justified; past the end of input it is filled with ones,
/// so trailing padding (a prefix of EOS) can never complete a shorter code.
fn window(acc: u64, bits: u32) -> u32 {
    let max = MAX_LEN as u32;
    let w = if bits >= max {
        acc >> (bits - max)
    } else {
        let fill = max - bits;
        (acc << fill) | ((1 << fill) - 1)
    };
    (w & WINDOW_MASK) as u32
}

/// The length of the code at the start of `window`: the first length whose limit is above it.
fn code_len(window: u32) -> Result<u32, DecodeError> {
    // Shorter lengths have no codes (their limits are 0), so start at MIN_LEN.
    // `limit[MAX_LEN] == 1 << 30` makes a miss impossible; still an error, not a panic.
    let len = TABLE.limit[MIN_LEN..]
        .iter()
        .position(|&limit| window < limit);
    len.map(|l| (l + MIN_LEN) as u32)
        .ok_or(DecodeError::InvalidHuffman)
}

/// The symbol whose `len`-bit code starts `window`.
fn symbol(window: u32, len: u32) -> Result<u16, DecodeError> {
    let l = len as usize;
    let code = window >> (MAX_LEN as u32 - len);
    let (first, offset) = (TABLE.first[l], TABLE.offset[l]);
    // `code >= first` holds by construction of the limits; checked anyway, not trusted.
    let rank = code.checked_sub(first).ok_or(DecodeError::InvalidHuffman)?;
    let slot = usize::from(offset) + rank as usize;
    TABLE
        .symbols
        .get(slot)
        .copied()
        .ok_or(DecodeError::InvalidHuffman)
}

/// Accepts the last `bits` bits as padding only if they are at most 7 ones (RFC 7541 §5.2).
fn check_padding(acc: u64, bits: u32) -> Result<(), DecodeError> {
    let ones = (1u64 << bits) - 1;
    if bits <= MAX_PADDING && acc & ones == ones {
        Ok(())
    } else {
        Err(DecodeError::InvalidHuffman)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::http2_wire::hpack::test_hex as hex;

    /// Test-only encoder straight from `CODES` / `LENS`, padding with ones.
    fn encode(data: &[u8]) -> Vec<u8> {
        encode_symbols(data.iter().map(|&b| usize::from(b)))
    }

    fn encode_symbols(symbols: impl Iterator<Item = usize>) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u64, 0u32);
        for s in symbols {
            acc = (acc << LENS[s]) | u64::from(CODES[s]);
            bits += u32::from(LENS[s]);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            let pad = 8 - bits;
            out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
        }
        out
    }

    #[test]
    fn decodes_rfc_c4_strings() {
        let cases = [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            ("9bd9 ab", "gzip"),
        ];
        for (coded, plain) in cases {
            assert_eq!(
                decode(&hex(coded)),
                Ok(plain.as_bytes().to_vec()),
                "{plain}"
            );
            assert_eq!(encode(plain.as_bytes()), hex(coded), "{plain}");
        }
    }

    #[test]
    fn empty_string() {
        assert_eq!(decode(&[]), Ok(Vec::new()));
    }

    #[test]
    fn every_symbol_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(decode(&encode(&[b])), Ok(vec![b]), "symbol {b}");
        }
        let all: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
        assert_eq!(decode(&encode(&all)), Ok(all));
    }

    #[test]
    fn codes_are_prefix_free_and_complete() {
        // Kraft sum of exactly 1 (scaled by 2^30): the code is complete, as `build` asserts.
        let kraft: u64 = LENS
            .iter()
            .map(|&l| 1u64 << (MAX_LEN - usize::from(l)))
            .sum();
        assert_eq!(kraft, 1 << MAX_LEN);
        assert_eq!((CODES[256], LENS[256]), (0x3fff_ffff, 30));
    }

    #[test]
    fn rejects_eos() {
        // EOS (30 ones) plus 2 bits of padding.
        assert_eq!(decode(&[0xff; 4]), Err(DecodeError::InvalidHuffman));
        // EOS after a valid symbol.
        let with_eos = encode_symbols([usize::from(b'a'), 256].into_iter());
        assert_eq!(decode(&with_eos), Err(DecodeError::InvalidHuffman));
    }

    #[test]
    fn rejects_long_padding() {
        // A lone octet of ones: 8 bits of padding.
        assert_eq!(decode(&[0xff]), Err(DecodeError::InvalidHuffman));
        // '0' (00000) + 3 bits of padding, then a whole extra octet of ones: 11 bits.
        assert_eq!(decode(&[0x07]), Ok(b"0".to_vec()));
        assert_eq!(decode(&[0x07, 0xff]), Err(DecodeError::InvalidHuffman));
    }

    #[test]
    fn rejects_padding_that_is_not_ones() {
        // '0' (00000) followed by "000" instead of "111".
        assert_eq!(decode(&[0x00]), Err(DecodeError::InvalidHuffman));
        // '0' followed by "110".
        assert_eq!(decode(&[0x06]), Err(DecodeError::InvalidHuffman));
    }

    #[test]
    fn exact_octet_boundary_needs_no_padding() {
        // Eight 5-bit '0' codes (00000) fill exactly 5 octets: no padding at all.
        let data = encode(b"00000000");
        assert_eq!(data, vec![0; 5]);
        assert_eq!(decode(&data), Ok(b"00000000".to_vec()));
    }
}
