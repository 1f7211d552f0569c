//! Column encodings: parsing their names, and turning values into bytes and back
//! exactly as mosaicml-streaming does.

use std::borrow::Cow;
use std::fmt;

use crate::dtype::Dtype;
use crate::pyjson;
use crate::value::{Array, Scalar, Value};

/// How one column's values are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    Bytes,
    Str,
    /// A signed 64-bit integer.
    Int,
    /// `uint8` .. `float64`: one fixed-size scalar.
    Scalar(Dtype),
    Json,
    /// `ndarray`, `ndarray:DTYPE` or `ndarray:DTYPE:D0,D1..`: whatever is not
    /// fixed by the encoding is stored in each value's header.
    NdArray {
        dtype: Option<Dtype>,
        shape: Option<Vec<usize>>,
    },
}

/// Why a value could not be encoded or decoded; the caller adds the column name.
pub type CodecError = String;

impl Encoding {
    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "bytes" => return Some(Encoding::Bytes),
            "str" => return Some(Encoding::Str),
            "int" => return Some(Encoding::Int),
            "json" => return Some(Encoding::Json),
            "ndarray" => {
                return Some(Encoding::NdArray {
                    dtype: None,
                    shape: None,
                });
            }
            _ => {}
        }
        if let Some(dtype) = Dtype::from_name(name) {
            return Some(Encoding::Scalar(dtype));
        }
        let rest = name.strip_prefix("ndarray:")?;
        let (dtype, shape) = match rest.split_once(':') {
            Some((d, s)) => (d, Some(s)),
            None => (rest, None),
        };
        let dtype = Dtype::from_name(dtype)?;
        let shape = match shape {
            None => None,
            Some(s) => {
                let dims = s
                    .split(',')
                    .map(|d| d.parse::<usize>().ok().filter(|&d| d > 0))
                    .collect::<Option<Vec<usize>>>()?;
                // A fixed-size value lives in one shard, so its size must fit
                // the shard's 32-bit offsets (and never overflow the product).
                dims.iter()
                    .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
                    .filter(|&bytes| bytes as u64 <= crate::index::MAX_SHARD_BYTES)?;
                Some(dims)
            }
        };
        Some(Encoding::NdArray {
            dtype: Some(dtype),
            shape,
        })
    }

    /// The encoded size when it is the same for every value (`column_sizes`).
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Encoding::Int => Some(8),
            Encoding::Scalar(d) => Some(d.size()),
            Encoding::NdArray {
                dtype: Some(d),
                shape: Some(s),
            } => Some(s.iter().product::<usize>() * d.size()),
            _ => None,
        }
    }

    /// Appends the encoded bytes of `value` to `out`.
    pub fn encode(&self, value: &Value<'_>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match (self, value) {
            (Encoding::Bytes, Value::Bytes(b)) => out.extend_from_slice(b),
            (Encoding::Str, Value::Str(s)) => out.extend_from_slice(s.as_bytes()),
            (Encoding::Int, Value::Int(v)) => out.extend_from_slice(&v.to_le_bytes()),
            (Encoding::Scalar(dtype), Value::Scalar(s)) => {
                if s.dtype() != *dtype {
                    return Err(format!("expected a {dtype} scalar, got {}", s.dtype()));
                }
                s.to_le_bytes(out);
            }
            (Encoding::Json, Value::Json(v)) => out.extend_from_slice(pyjson::dumps(v).as_bytes()),
            (Encoding::NdArray { dtype, shape }, Value::Array(a)) => {
                encode_array(*dtype, shape.as_deref(), a, out)?
            }
            (enc, _) => return Err(format!("value does not fit encoding {enc}")),
        }
        Ok(())
    }

    /// Decodes one value from exactly its encoded bytes, borrowing them.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Value<'a>, CodecError> {
        if let Some(size) = self.fixed_size()
            && bytes.len() != size
        {
            return Err(format!(
                "{self} value has {} bytes, expected {size}",
                bytes.len()
            ));
        }
        Ok(match self {
            Encoding::Bytes => Value::Bytes(Cow::Borrowed(bytes)),
            Encoding::Str => Value::Str(Cow::Borrowed(
                std::str::from_utf8(bytes).map_err(|e| format!("str is not UTF-8: {e}"))?,
            )),
            Encoding::Int => Value::Int(i64::from_le_bytes(bytes.try_into().map_err(|_| "int")?)),
            Encoding::Scalar(d) => {
                Value::Scalar(Scalar::from_le_bytes(*d, bytes).ok_or("short scalar")?)
            }
            Encoding::Json => Value::Json(
                serde_json::from_slice(bytes).map_err(|e| format!("invalid json: {e}"))?,
            ),
            Encoding::NdArray { dtype, shape } => {
                Value::Array(decode_array(*dtype, shape.as_deref(), bytes)?)
            }
        })
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Bytes => f.write_str("bytes"),
            Encoding::Str => f.write_str("str"),
            Encoding::Int => f.write_str("int"),
            Encoding::Json => f.write_str("json"),
            Encoding::Scalar(d) => f.write_str(d.name()),
            Encoding::NdArray { dtype: None, .. } => f.write_str("ndarray"),
            Encoding::NdArray {
                dtype: Some(d),
                shape: None,
            } => write!(f, "ndarray:{d}"),
            Encoding::NdArray {
                dtype: Some(d),
                shape: Some(s),
            } => {
                let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
                write!(f, "ndarray:{d}:{}", dims.join(","))
            }
        }
    }
}

/// The shape header stores dimensions in the smallest unsigned type that holds
/// the largest one: code 0/1/2/3 = u8/u16/u32/u64.
fn shape_code(shape: &[usize]) -> u8 {
    let max = shape.iter().copied().max().unwrap_or(0) as u64;
    match max {
        0..=0xff => 0,
        0x100..=0xffff => 1,
        0x1_0000..=0xffff_ffff => 2,
        _ => 3,
    }
}

fn encode_array(
    dtype: Option<Dtype>,
    shape: Option<&[usize]>,
    a: &Array<'_>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if a.shape.is_empty() || a.is_empty() {
        return Err("empty and 0-d arrays are not encodable".into());
    }
    if a.data.len() != a.len() * a.dtype.size() {
        return Err(format!(
            "array of shape {:?} {} holds {} bytes",
            a.shape,
            a.dtype,
            a.data.len()
        ));
    }
    match dtype {
        Some(d) if d != a.dtype => return Err(format!("expected {d} array, got {}", a.dtype)),
        Some(_) => {}
        None => out.push(a.dtype.code()),
    }
    match shape {
        Some(s) if s != a.shape.as_slice() => {
            return Err(format!("expected shape {s:?}, got {:?}", a.shape));
        }
        Some(_) => {}
        None => {
            if a.shape.len() > 63 {
                return Err("arrays of more than 63 dimensions are not encodable".into());
            }
            let code = shape_code(&a.shape);
            out.push(((a.shape.len() as u8) << 2) | code);
            for &dim in &a.shape {
                let dim = dim as u64;
                match code {
                    0 => out.push(dim as u8),
                    1 => out.extend_from_slice(&(dim as u16).to_le_bytes()),
                    2 => out.extend_from_slice(&(dim as u32).to_le_bytes()),
                    _ => out.extend_from_slice(&dim.to_le_bytes()),
                }
            }
        }
    }
    out.extend_from_slice(&a.data);
    Ok(())
}

fn decode_array<'a>(
    dtype: Option<Dtype>,
    shape: Option<&[usize]>,
    bytes: &'a [u8],
) -> Result<Array<'a>, CodecError> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&'a [u8], CodecError> {
        if rest.len() < n {
            return Err("ndarray header runs past the value".into());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let dtype = match dtype {
        Some(d) => d,
        None => {
            let code = take(1)?[0];
            Dtype::from_code(code).ok_or(format!("unknown ndarray dtype code {code}"))?
        }
    };
    let shape = match shape {
        Some(s) => s.to_vec(),
        None => {
            let magic = take(1)?[0];
            let ndim = (magic >> 2) as usize;
            let width = 1usize << (magic & 3);
            if ndim == 0 {
                return Err("0-d ndarray".into());
            }
            let dims = take(ndim * width)?;
            dims.chunks_exact(width)
                .map(|c| {
                    let mut buf = [0u8; 8];
                    buf[..width].copy_from_slice(c);
                    usize::try_from(u64::from_le_bytes(buf))
                        .map_err(|_| "ndarray dimension overflows".to_string())
                })
                .collect::<Result<Vec<usize>, _>>()?
        }
    };
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("ndarray shape overflows")?;
    if count == 0 {
        return Err("empty ndarray".into());
    }
    let expected = count
        .checked_mul(dtype.size())
        .ok_or("ndarray shape overflows")?;
    let data = take(expected)?;
    if !rest.is_empty() {
        return Err(format!(
            "ndarray of shape {shape:?} {dtype} leaves {} trailing bytes",
            rest.len()
        ));
    }
    Ok(Array {
        dtype,
        shape,
        data: Cow::Borrowed(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_encoding_form() {
        for name in [
            "bytes",
            "str",
            "int",
            "json",
            "uint8",
            "float16",
            "int64",
            "ndarray",
            "ndarray:uint32",
            "ndarray:int32:4",
            "ndarray:float32:2,3",
        ] {
            let enc = Encoding::parse(name).unwrap();
            assert_eq!(enc.to_string(), name);
        }
        for bad in [
            "pkl",
            "ndarray:u32",
            "ndarray:int32:0",
            "ndarray:int32:",
            "Str",
        ] {
            assert_eq!(Encoding::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn shape_header_uses_the_smallest_type_holding_the_largest_dimension() {
        let enc = Encoding::parse("ndarray:uint32").unwrap();
        let tokens = vec![7u32; 65_536];
        let mut out = Vec::new();
        enc.encode(&Value::Array(Array::from_u32(&tokens)), &mut out)
            .unwrap();
        assert_eq!(&out[..5], &[0x06, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(out.len(), 5 + 4 * 65_536);

        let indices = [0u32, 10, 10, 20, 20, 30];
        let mut out = Vec::new();
        let arr = Array::from_u32(&indices).with_shape(vec![3, 2]);
        enc.encode(&Value::Array(arr.clone()), &mut out).unwrap();
        assert_eq!(&out[..3], &[0x08, 3, 2]);
        assert_eq!(enc.decode(&out).unwrap(), Value::Array(arr));
    }

    #[test]
    fn rejects_empty_arrays_and_wrong_dtypes() {
        let enc = Encoding::parse("ndarray:uint32").unwrap();
        let mut out = Vec::new();
        assert!(
            enc.encode(&Value::Array(Array::from_u32(&[])), &mut out)
                .is_err()
        );
        assert!(
            enc.encode(&Value::Array(Array::from_u16(&[1])), &mut out)
                .is_err()
        );
        assert!(enc.decode(&[0x04, 0x00]).is_err());
        assert!(enc.decode(&[0x04, 0x02, 1, 0, 0, 0]).is_err());
    }
}
