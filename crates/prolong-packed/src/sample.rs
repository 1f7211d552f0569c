//! The one validation rule of a packed sample, for every reader: `prolong-data
//! verify` ([`check_sample`]), the trainer's loader ([`read_indices`], [`read_mask`])
//! and [`PackedSequence::new`](crate::PackedSequence::new) ([`check_pieces`]).
//!
//! * `input_ids`: the tokens; `length`, when present, equals their number.
//! * `indices`: shape (n, 2), integer `[start, end)` pieces, sorted, disjoint and
//!   within `[0, N]`. Empty pieces are allowed and ignored; a token no piece covers
//!   is a one-token document of its own. `pack` always writes pieces that tile
//!   `[0, N)`, but the model's semantics (checked against transformers) are defined
//!   for gaps too, so data from another packer that leaves gaps is valid.
//! * `mask`: one value per token, each 0 or 1, any integer dtype.

use prolong_mds::{Array, Dtype, Value};

use crate::columns::{INDICES, INPUT_IDS, LENGTH, MASK};

/// Checks document pieces against a sequence of `tokens` tokens.
pub fn check_pieces(indices: &[[usize; 2]], tokens: usize) -> Result<(), String> {
    let mut prev_end = 0;
    for (i, &[start, end]) in indices.iter().enumerate() {
        if start > end || end > tokens {
            return Err(format!(
                "indices piece {i} [{start}, {end}) is not within [0, {tokens})"
            ));
        }
        if start < prev_end {
            return Err(format!(
                "indices piece {i} [{start}, {end}) overlaps or precedes the previous piece (ends at {prev_end})"
            ));
        }
        prev_end = end;
    }
    Ok(())
}

/// Every value of an integer array, or an error naming `column` for a float one.
fn integers(a: &Array<'_>, column: &str) -> Result<Vec<i128>, String> {
    if a.dtype.is_float() {
        return Err(format!(
            "{column} has dtype {}, not an integer type",
            a.dtype
        ));
    }
    Ok((0..a.len())
        .map(|i| a.get(i).and_then(|v| v.as_i128()).unwrap_or(-1))
        .collect())
}

/// The `indices` column of a sample of `tokens` tokens, checked.
pub fn read_indices(a: &Array<'_>, tokens: usize) -> Result<Vec<[usize; 2]>, String> {
    if a.shape.len() != 2 || a.shape[1] != 2 {
        return Err(format!("indices has shape {:?}, expected (n, 2)", a.shape));
    }
    let values: Vec<usize> = match a.as_u32() {
        Some(v) => v.iter().map(|&x| x as usize).collect(),
        None => integers(a, INDICES)?
            .into_iter()
            .map(|x| usize::try_from(x).map_err(|_| format!("indices holds {x}")))
            .collect::<Result<_, _>>()?,
    };
    let pieces: Vec<[usize; 2]> = values.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
    check_pieces(&pieces, tokens)?;
    Ok(pieces)
}

/// The `mask` column of a sample of `tokens` tokens, checked.
pub fn read_mask(a: &Array<'_>, tokens: usize) -> Result<Vec<u8>, String> {
    if a.len() != tokens {
        return Err(format!("mask has {} values for {tokens} tokens", a.len()));
    }
    match a.dtype {
        Dtype::U8 => {
            let v = a.as_u8().expect("u8");
            if let Some(t) = v.iter().position(|&x| x > 1) {
                return Err(format!("mask[{t}] = {}, expected 0 or 1", v[t]));
            }
            Ok(v.into_owned())
        }
        _ => integers(a, MASK)?
            .into_iter()
            .enumerate()
            .map(|(t, v)| match v {
                0 | 1 => Ok(v as u8),
                _ => Err(format!("mask[{t}] = {v}, expected 0 or 1")),
            })
            .collect(),
    }
}

/// The rule over one decoded sample's values (`prolong-data verify`): samples
/// without `input_ids` (not ProLong data) pass.
pub fn check_sample(values: &[(&str, Value<'_>)]) -> Result<(), String> {
    let get = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let Some(Value::Array(ids)) = get(INPUT_IDS) else {
        return Ok(());
    };
    let tokens = ids.len();
    if let Some(length) = get(LENGTH).and_then(Value::as_integer)
        && length != tokens as i128
    {
        return Err(format!("length {length} but {tokens} input_ids"));
    }
    if let Some(Value::Array(indices)) = get(INDICES) {
        read_indices(indices, tokens)?;
    }
    if let Some(Value::Array(mask)) = get(MASK) {
        read_mask(mask, tokens)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(indices: &'a [u32], mask: &'a [u8], length: i64) -> Vec<(&'a str, Value<'a>)> {
        vec![
            (
                INDICES,
                Value::Array(Array::from_u32(indices).with_shape(vec![indices.len() / 2, 2])),
            ),
            (INPUT_IDS, Value::Array(Array::from_u32(&[7; 8]))),
            (LENGTH, Value::Int(length)),
            (MASK, Value::Array(Array::from_u8(mask))),
        ]
    }

    #[test]
    fn the_rule() {
        let ok_mask = [0, 1, 1, 1, 0, 1, 1, 1];
        // Tiling pieces, an empty piece, and a gap (token 4: a one-token document).
        assert_eq!(
            check_sample(&sample(&[0, 4, 4, 4, 5, 8], &ok_mask, 8)),
            Ok(())
        );
        let err = |indices: &[u32], mask: &[u8], length| {
            check_sample(&sample(indices, mask, length)).unwrap_err()
        };
        assert_eq!(
            err(&[0, 4, 3, 8], &ok_mask, 8),
            "indices piece 1 [3, 8) overlaps or precedes the previous piece (ends at 4)"
        );
        assert_eq!(
            err(&[0, 9], &ok_mask, 8),
            "indices piece 0 [0, 9) is not within [0, 8)"
        );
        assert_eq!(
            err(&[5, 4], &ok_mask, 8),
            "indices piece 0 [5, 4) is not within [0, 8)"
        );
        assert_eq!(err(&[0, 8], &ok_mask, 9), "length 9 but 8 input_ids");
        assert_eq!(
            err(&[0, 8], &[0, 1, 2, 1, 0, 1, 1, 1], 8),
            "mask[2] = 2, expected 0 or 1"
        );
        assert_eq!(err(&[0, 8], &[0, 1], 8), "mask has 2 values for 8 tokens");
        // Not ProLong's columns: nothing to check.
        assert_eq!(check_sample(&[("text", Value::Str("x".into()))]), Ok(()));
    }
}
