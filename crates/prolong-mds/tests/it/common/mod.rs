//! Shared by the prolong-mds integration tests: the golden datasets written by
//! mosaicml-streaming 0.13.0, and conversion between their expected.json and
//! our values.
#![allow(dead_code)]

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use prolong_mds::{Array, Dtype, Encoding, Scalar, Value};
use serde_json::{Value as Json, json};

/// `copy_dir`, one file with the other crates' tests (prolong-data's common/shared.rs).
#[path = "../../../../prolong-data/tests/it/common/shared.rs"]
mod shared;
pub use shared::copy_dir;

pub mod packed;

/// `err` holds every one of `parts`.
pub fn assert_has(err: &str, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "{part:?} is not in {err}");
    }
}

pub const GOLDEN: [&str; 5] = [
    "prolong-packed",
    "zstd-hashed",
    "sft-mask",
    "merged",
    "encodings",
];

pub fn golden_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/mds-golden")
        .join(name)
}

/// A private, writable copy of a golden dataset (readers cache decompressed
/// shards beside the compressed ones, and tests flip bytes).
pub fn golden_copy(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&golden_dir(name), tmp.path());
    tmp
}

pub struct Expected {
    pub columns: Vec<(String, String)>,
    pub writer_args: Json,
    pub samples: Vec<Json>,
}

pub fn expected(name: &str) -> Expected {
    let text = std::fs::read(golden_dir(name).join("expected.json")).unwrap();
    let json: Json = serde_json::from_slice(&text).unwrap();
    let columns = json["columns"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    Expected {
        columns,
        writer_args: json.get("writer_args").cloned().unwrap_or(json!({})),
        samples: json["samples"].as_array().unwrap().clone(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn scalar_json(s: Scalar) -> Json {
    match s.as_i128() {
        Some(i) => json!(
            i64::try_from(i)
                .map(Json::from)
                .unwrap_or_else(|_| Json::from(i as u64))
        ),
        None => json!(s.as_f64()),
    }
}

/// Our decoded value in expected.json's notation.
pub fn to_expected(value: &Value<'_>) -> Json {
    match value {
        Value::Bytes(b) => json!({ "bytes_hex": hex(b) }),
        Value::Str(s) => json!(s),
        Value::Int(i) => json!(i),
        Value::Scalar(s) => scalar_json(*s),
        Value::Json(j) => j.clone(),
        Value::Array(a) => {
            let values: Vec<Json> = (0..a.len())
                .map(|i| scalar_json(a.get(i).unwrap()))
                .collect();
            json!({ "dtype": a.dtype.name(), "shape": a.shape, "values": values })
        }
    }
}

/// expected.json's notation as a value of the given encoding.
pub fn from_expected(encoding: &str, json: &Json) -> Value<'static> {
    match Encoding::parse(encoding).unwrap() {
        Encoding::Bytes => Value::Bytes(Cow::Owned(unhex(json["bytes_hex"].as_str().unwrap()))),
        Encoding::Str => Value::Str(Cow::Owned(json.as_str().unwrap().to_string())),
        Encoding::Int => Value::Int(json.as_i64().unwrap()),
        Encoding::Json => Value::Json(json.clone()),
        Encoding::Scalar(dtype) => {
            let mut bytes = Vec::new();
            push_scalar(dtype, json, &mut bytes);
            Value::Scalar(
                prolong_mds::Array {
                    dtype,
                    shape: vec![1],
                    data: Cow::Owned(bytes),
                }
                .get(0)
                .unwrap(),
            )
        }
        Encoding::NdArray { .. } => {
            let dtype = Dtype::from_name(json["dtype"].as_str().unwrap()).unwrap();
            let shape = json["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let mut data = Vec::new();
            for v in json["values"].as_array().unwrap() {
                push_scalar(dtype, v, &mut data);
            }
            Value::Array(Array {
                dtype,
                shape,
                data: Cow::Owned(data),
            })
        }
    }
}

fn push_scalar(dtype: Dtype, v: &Json, out: &mut Vec<u8>) {
    let int = || {
        v.as_i64()
            .map(i128::from)
            .or(v.as_u64().map(i128::from))
            .unwrap()
    };
    match dtype {
        Dtype::U8 => out.push(int() as u8),
        Dtype::I8 => out.push(int() as i8 as u8),
        Dtype::U16 => out.extend_from_slice(&(int() as u16).to_le_bytes()),
        Dtype::I16 => out.extend_from_slice(&(int() as i16).to_le_bytes()),
        Dtype::U32 => out.extend_from_slice(&(int() as u32).to_le_bytes()),
        Dtype::I32 => out.extend_from_slice(&(int() as i32).to_le_bytes()),
        Dtype::U64 => out.extend_from_slice(&(int() as u64).to_le_bytes()),
        Dtype::I64 => out.extend_from_slice(&(int() as i64).to_le_bytes()),
        Dtype::F16 => {
            out.extend_from_slice(&half::f16::from_f64(v.as_f64().unwrap()).to_le_bytes())
        }
        Dtype::F32 => out.extend_from_slice(&(v.as_f64().unwrap() as f32).to_le_bytes()),
        Dtype::F64 => out.extend_from_slice(&v.as_f64().unwrap().to_le_bytes()),
    }
}

/// Every file of a dataset folder (recursively), relative path → bytes.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.remove("expected.json");
    out
}
