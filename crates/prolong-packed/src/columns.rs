//! Column names and MDS encodings of the samples the corpus stages write.
//!
//! A tokenized sample (tokenize, chat; copied unchanged by filter and sample) is
//! [`TOKENIZED`] plus [`MASK`] for chat data; a packed sample (pack) is [`PACKED`]
//! plus [`MASK`] when its input had one. Readers find columns by name, so the order
//! here is only the order the writers list them in.

/// The source name (tokenized) or the output subset (packed).
pub const DOMAIN: &str = "domain";
/// The tokens: uint32, one value per token.
pub const INPUT_IDS: &str = "input_ids";
/// Packed only: `[start, end)` of each document piece, shape (n, 2).
pub const INDICES: &str = "indices";
/// The number of `input_ids`.
pub const LENGTH: &str = "length";
/// SFT data: one 0/1 byte per token, 1 = the token is trained on.
pub const MASK: &str = "mask";

/// MDS encodings of the columns above.
pub const STR: &str = "str";
pub const U32_ARRAY: &str = "ndarray:uint32";
pub const U8_ARRAY: &str = "ndarray:uint8";
pub const INT: &str = "int";

/// The mask column as written, for writers that add it.
pub const MASK_COLUMN: (&str, &str) = (MASK, U8_ARRAY);

/// Columns of a tokenized sample (without the chat mask).
pub const TOKENIZED: [(&str, &str); 3] = [(DOMAIN, STR), (INPUT_IDS, U32_ARRAY), (LENGTH, INT)];

/// Columns of a packed sample (without the mask).
pub const PACKED: [(&str, &str); 4] = [
    (DOMAIN, STR),
    (INDICES, U32_ARRAY),
    (INPUT_IDS, U32_ARRAY),
    (LENGTH, INT),
];
