//! Char classes as Oniguruma's regexes see them: `\s` (Unicode White_Space),
//! `\p{L}`, `\p{N}` and the rest, with a table for the Basic Multilingual
//! Plane so that the pre-tokenizers' inner loops are a lookup.

use std::sync::OnceLock;

use unicode_general_category::{GeneralCategory as Gc, get_general_category};

/// Neither white space, letter nor number: `[^\s\p{L}\p{N}]`.
pub(super) const OTHER: u8 = 0;
/// `\p{L}`.
pub(super) const LETTER: u8 = 1;
/// `\p{N}`.
pub(super) const NUMBER: u8 = 2;
/// `\s`.
pub(super) const SPACE: u8 = 3;

/// Classes of the ASCII chars.
pub(super) const ASCII: [u8; 128] = {
    let mut t = [OTHER; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() {
            LETTER
        } else if c.is_ascii_digit() {
            NUMBER
        } else if (c >= 0x09 && c <= 0x0d) || c == b' ' {
            SPACE
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

/// Oniguruma's `\s` outside ASCII (Unicode White_Space).
fn is_space_cp(cp: u32) -> bool {
    matches!(
        cp,
        0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000
    )
}

fn class_of_cp(cp: u32) -> u8 {
    if cp < 0x80 {
        return ASCII[cp as usize];
    }
    if is_space_cp(cp) {
        return SPACE;
    }
    let Some(c) = char::from_u32(cp) else {
        return OTHER;
    };
    match get_general_category(c) {
        Gc::UppercaseLetter
        | Gc::LowercaseLetter
        | Gc::TitlecaseLetter
        | Gc::ModifierLetter
        | Gc::OtherLetter => LETTER,
        Gc::DecimalNumber | Gc::LetterNumber | Gc::OtherNumber => NUMBER,
        _ => OTHER,
    }
}

/// The class of a char as the regexes see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharClass {
    /// `[^\s\p{L}\p{N}]`
    Other,
    /// `\p{L}`
    Letter,
    /// `\p{N}`
    Number,
    /// `\s`
    Space,
}

/// The class of `c` (as the pre-tokenizers use it).
pub fn char_class(c: char) -> CharClass {
    let mut buf = [0; 4];
    let s = c.encode_utf8(&mut buf).as_bytes();
    match class_at(bmp_table(), s, 0).0 {
        LETTER => CharClass::Letter,
        NUMBER => CharClass::Number,
        SPACE => CharClass::Space,
        _ => CharClass::Other,
    }
}

/// Classes of the whole Basic Multilingual Plane, built once (64 KiB).
pub(super) fn bmp_table() -> &'static [u8] {
    static T: OnceLock<Box<[u8]>> = OnceLock::new();
    T.get_or_init(|| (0u32..0x10000).map(class_of_cp).collect())
}

/// The class of the char at byte `i` of `s` (valid UTF-8), and its length.
#[inline(always)]
pub(super) fn class_at(bmp: &[u8], s: &[u8], i: usize) -> (u8, usize) {
    let b0 = s[i];
    if b0 < 0x80 {
        return (ASCII[b0 as usize], 1);
    }
    if b0 < 0xe0 {
        let cp = ((b0 as usize & 0x1f) << 6) | (s[i + 1] as usize & 0x3f);
        return (bmp[cp], 2);
    }
    if b0 < 0xf0 {
        let cp = ((b0 as usize & 0x0f) << 12)
            | ((s[i + 1] as usize & 0x3f) << 6)
            | (s[i + 2] as usize & 0x3f);
        return (bmp[cp], 3);
    }
    let cp = ((b0 as u32 & 0x07) << 18)
        | ((s[i + 1] as u32 & 0x3f) << 12)
        | ((s[i + 2] as u32 & 0x3f) << 6)
        | (s[i + 3] as u32 & 0x3f);
    (class_of_cp(cp), 4)
}
