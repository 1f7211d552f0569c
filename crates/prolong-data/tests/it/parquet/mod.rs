//! Parquet input (FineWeb-style): rows in file order over row groups, pages
//! and read batches; null/empty/invalid text skipped with the row number;
//! a missing column, a text column of another type, a truncated file: one
//! error naming the file; corrupt data further on: a `corrupt_stream` skip,
//! never a panic; and the tokenize stage end to end.
#![cfg(feature = "parquet")]

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::*;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use prolong_data::documents::{
    Document, Fields, GroupFields, Record, Select, SkipReason, read_documents,
};
use prolong_data::task::TaskSpec;
use prolong_data::tokenize::stage::{TokenizeOptions, input_files, tokenize_task};
use prolong_mds::MdsDataset;

mod reader;
mod stack;
mod stage;

/// One column of one row group; `Req*` for REQUIRED columns (no nulls).
enum Col {
    Str(Vec<Cell>),
    ReqStr(Vec<Vec<u8>>),
    I64(Vec<Option<i64>>),
}

fn s(v: &str) -> Cell {
    Some(v.as_bytes().to_vec())
}

/// Writes a file of `schema` with one row group per item of `groups`, in
/// small pages (3 rows) so that column chunks span several.
fn write_parquet(path: &Path, schema: &str, groups: Vec<Vec<Col>>, compression: Compression) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(compression)
            .set_data_page_row_count_limit(3)
            .set_write_batch_size(3)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    for group in groups {
        let mut rg = writer.next_row_group().unwrap();
        for col in group {
            let mut w = rg.next_column().unwrap().unwrap();
            match col {
                Col::Str(values) => {
                    let defs: Vec<i16> = values.iter().map(|v| v.is_some() as i16).collect();
                    let vals: Vec<ByteArray> =
                        values.into_iter().flatten().map(Into::into).collect();
                    w.typed::<ByteArrayType>()
                        .write_batch(&vals, Some(&defs), None)
                        .unwrap();
                }
                Col::ReqStr(values) => {
                    let vals: Vec<ByteArray> = values.into_iter().map(Into::into).collect();
                    w.typed::<ByteArrayType>()
                        .write_batch(&vals, None, None)
                        .unwrap();
                }
                Col::I64(values) => {
                    let defs: Vec<i16> = values.iter().map(|v| v.is_some() as i16).collect();
                    let vals: Vec<i64> = values.into_iter().flatten().collect();
                    w.typed::<Int64Type>()
                        .write_batch(&vals, Some(&defs), None)
                        .unwrap();
                }
            }
            w.close().unwrap();
        }
        rg.close().unwrap();
    }
    writer.close().unwrap();
}

const FINEWEB: &str = "message fineweb {
    OPTIONAL BYTE_ARRAY text (UTF8);
    OPTIONAL BYTE_ARRAY id (UTF8);
    OPTIONAL BYTE_ARRAY dump (UTF8);
    OPTIONAL BYTE_ARRAY url (UTF8);
    OPTIONAL INT64 token_count;
}";

/// A nullable string cell.
type Cell = Option<Vec<u8>>;

/// Three row groups of FineWeb-shaped rows: (text, id).
fn fineweb_rows() -> Vec<Vec<(Cell, Cell)>> {
    vec![
        vec![
            (s("Hello, world."), s("<urn:uuid:1>")),           // row 1
            (None, s("<urn:uuid:2>")),                         // 2: null text
            (s(""), s("<urn:uuid:3>")),                        // 3: empty
            (s("héllo wörld — 日本語 🎉"), s("<urn:uuid:4>")), // 4
            (s("  \n\t"), s("<urn:uuid:5>")),                  // 5: blank
        ],
        vec![
            (s("second group\nline two"), s("<urn:uuid:6>")), // 6
            (Some(b"caf\xe9".to_vec()), s("<urn:uuid:7>")),   // 7: invalid UTF-8
            (s("no id here"), None),                          // 8: null id
        ],
        vec![
            (s("third group, one row"), s("<urn:uuid:9>")), // 9
        ],
    ]
}

fn write_fineweb(path: &Path, compression: Compression) {
    let groups = fineweb_rows()
        .into_iter()
        .map(|rows| {
            let n = rows.len();
            let (texts, ids): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
            vec![
                Col::Str(texts),
                Col::Str(ids),
                Col::Str(vec![s("CC-MAIN-2024-10"); n]),
                Col::Str((0..n).map(|i| s(&format!("https://x.org/{i}"))).collect()),
                Col::I64((0..n).map(|i| Some(i as i64 * 100)).collect()),
            ]
        })
        .collect();
    write_parquet(path, FINEWEB, groups, compression);
}

fn fields(text: &str, id: Option<&str>) -> Fields {
    Fields {
        text: text.into(),
        id: id.map(Into::into),
        ..Default::default()
    }
}

fn read_all(path: &Path, fields: &Fields) -> Vec<Record> {
    read_documents(path, fields).unwrap().collect()
}

fn doc(id: &str, text: &str) -> Record {
    Ok(Document {
        id: id.into(),
        text: text.into(),
        file_of: None,
    })
}

/// (reason, row) of a skip.
fn skip_of(r: &Record) -> Option<(SkipReason, u64)> {
    r.as_ref().err().map(|s| (s.reason, s.line))
}
