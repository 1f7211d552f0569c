use std::borrow::Cow;

use crate::dtype::Dtype;

/// One column's value in a sample. Byte payloads borrow where they can, so a
/// reader hands out views into the mapped shard and a writer takes views of the
/// caller's buffers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Bytes(Cow<'a, [u8]>),
    Str(Cow<'a, str>),
    /// The `int` encoding: a signed 64-bit integer.
    Int(i64),
    Scalar(Scalar),
    Json(serde_json::Value),
    Array(Array<'a>),
}

/// A value of one of the scalar encodings (`uint8` .. `float64`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    F16(half::f16),
    U32(u32),
    I32(i32),
    F32(f32),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Scalar {
    pub fn dtype(self) -> Dtype {
        match self {
            Scalar::U8(_) => Dtype::U8,
            Scalar::I8(_) => Dtype::I8,
            Scalar::U16(_) => Dtype::U16,
            Scalar::I16(_) => Dtype::I16,
            Scalar::F16(_) => Dtype::F16,
            Scalar::U32(_) => Dtype::U32,
            Scalar::I32(_) => Dtype::I32,
            Scalar::F32(_) => Dtype::F32,
            Scalar::U64(_) => Dtype::U64,
            Scalar::I64(_) => Dtype::I64,
            Scalar::F64(_) => Dtype::F64,
        }
    }

    pub(crate) fn to_le_bytes(self, out: &mut Vec<u8>) {
        match self {
            Scalar::U8(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::F16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Scalar::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        }
    }

    /// Reads a scalar of `dtype` from exactly `dtype.size()` little-endian bytes.
    pub(crate) fn from_le_bytes(dtype: Dtype, b: &[u8]) -> Option<Scalar> {
        fn arr<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
            b.try_into().ok()
        }
        Some(match dtype {
            Dtype::U8 => Scalar::U8(u8::from_le_bytes(arr(b)?)),
            Dtype::I8 => Scalar::I8(i8::from_le_bytes(arr(b)?)),
            Dtype::U16 => Scalar::U16(u16::from_le_bytes(arr(b)?)),
            Dtype::I16 => Scalar::I16(i16::from_le_bytes(arr(b)?)),
            Dtype::F16 => Scalar::F16(half::f16::from_le_bytes(arr(b)?)),
            Dtype::U32 => Scalar::U32(u32::from_le_bytes(arr(b)?)),
            Dtype::I32 => Scalar::I32(i32::from_le_bytes(arr(b)?)),
            Dtype::F32 => Scalar::F32(f32::from_le_bytes(arr(b)?)),
            Dtype::U64 => Scalar::U64(u64::from_le_bytes(arr(b)?)),
            Dtype::I64 => Scalar::I64(i64::from_le_bytes(arr(b)?)),
            Dtype::F64 => Scalar::F64(f64::from_le_bytes(arr(b)?)),
        })
    }

    /// The value as an integer, for integer dtypes.
    pub fn as_i128(self) -> Option<i128> {
        Some(match self {
            Scalar::U8(v) => v.into(),
            Scalar::I8(v) => v.into(),
            Scalar::U16(v) => v.into(),
            Scalar::I16(v) => v.into(),
            Scalar::U32(v) => v.into(),
            Scalar::I32(v) => v.into(),
            Scalar::U64(v) => v.into(),
            Scalar::I64(v) => v.into(),
            Scalar::F16(_) | Scalar::F32(_) | Scalar::F64(_) => return None,
        })
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::F16(v) => v.to_f64(),
            Scalar::F32(v) => v.into(),
            Scalar::F64(v) => v,
            other => other.as_i128().unwrap_or_default() as f64,
        }
    }
}

/// An n-dimensional array in C order, its elements little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<'a> {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// `shape.product() * dtype.size()` bytes.
    pub data: Cow<'a, [u8]>,
}

#[cfg(target_endian = "big")]
compile_error!("MDS stores little-endian values; this crate reinterprets them in place");

macro_rules! typed_views {
    ($($from:ident, $view:ident, $ty:ty, $dt:expr;)*) => {
        impl<'a> Array<'a> {
            $(
            /// A 1-D array borrowing `values`.
            pub fn $from(values: &'a [$ty]) -> Array<'a> {
                Array {
                    dtype: $dt,
                    shape: vec![values.len()],
                    data: Cow::Borrowed(bytemuck::cast_slice(values)),
                }
            }

            /// The elements, borrowed when the bytes are aligned for the type and
            /// copied otherwise. `None` when the dtype is not this type.
            pub fn $view(&self) -> Option<Cow<'_, [$ty]>> {
                (self.dtype == $dt).then(|| cast_or_copy::<$ty>(&self.data))
            }
            )*
        }
    };
}

typed_views! {
    from_u8, as_u8, u8, Dtype::U8;
    from_u16, as_u16, u16, Dtype::U16;
    from_u32, as_u32, u32, Dtype::U32;
    from_i32, as_i32, i32, Dtype::I32;
    from_u64, as_u64, u64, Dtype::U64;
    from_i64, as_i64, i64, Dtype::I64;
    from_f32, as_f32, f32, Dtype::F32;
    from_f64, as_f64, f64, Dtype::F64;
}

impl<'a> Array<'a> {
    pub fn with_shape(mut self, shape: Vec<usize>) -> Array<'a> {
        self.shape = shape;
        self
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_owned(self) -> Array<'static> {
        Array {
            dtype: self.dtype,
            shape: self.shape,
            data: Cow::Owned(self.data.into_owned()),
        }
    }

    /// Element `i` as a scalar (C order).
    pub fn get(&self, i: usize) -> Option<Scalar> {
        let size = self.dtype.size();
        let bytes = self.data.get(i * size..(i + 1) * size)?;
        Scalar::from_le_bytes(self.dtype, bytes)
    }
}

/// Reinterprets little-endian bytes as `T` without a copy when alignment allows.
pub fn cast_or_copy<T: bytemuck::Pod>(bytes: &[u8]) -> Cow<'_, [T]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => {
            // One memcpy into an aligned buffer; a trailing partial value is dropped.
            let mut values = vec![T::zeroed(); bytes.len() / std::mem::size_of::<T>()];
            let whole = values.len() * std::mem::size_of::<T>();
            bytemuck::cast_slice_mut::<T, u8>(&mut values).copy_from_slice(&bytes[..whole]);
            Cow::Owned(values)
        }
    }
}

impl Value<'_> {
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Int(v) => Value::Int(v),
            Value::Scalar(v) => Value::Scalar(v),
            Value::Json(v) => Value::Json(v),
            Value::Array(a) => Value::Array(a.into_owned()),
        }
    }

    /// An integer column read leniently: `int`, any integer scalar, or a
    /// one-element integer array (ProLong's folders store `length` all three ways).
    pub fn as_integer(&self) -> Option<i128> {
        match self {
            Value::Int(v) => Some((*v).into()),
            Value::Scalar(s) => s.as_i128(),
            Value::Array(a) if a.len() == 1 => a.get(0)?.as_i128(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array<'_>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}
