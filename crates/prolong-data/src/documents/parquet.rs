//! Parquet (FineWeb-style): one document a row, the text in a named column
//! (`--text-field`, a top-level or dotted nested column of strings), the id
//! in another (`--id-field`: strings or integers; a null id, or none asked
//! for, is `FILE:ROW`). A [`Fields::select`] column (`meta.redpajama_set_name`,
//! a field of a struct column) keeps the rows holding one of its values; the
//! [`Fields::group`] columns fill [`Document::file_of`].
//!
//! Read a row group at a time and, within it, [`BATCH_ROWS`] rows at a time
//! through the column readers of the `parquet` crate, which fetch one page
//! at a time: memory stays bounded whatever the size of the file. Only the
//! columns named in [`Fields`] are read. Records come in file order; a skip's line
//! is the 1-based row number in the file.
//!
//! A file whose footer cannot be read (truncated, not Parquet), a missing
//! column or a text column that does not hold strings is an error at open.
//! Data that breaks off or is corrupt further on is one `corrupt_stream`
//! skip at the row reached, and the rest of the file is lost.

use std::collections::VecDeque;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ::parquet::basic::{Compression, ConvertedType, LogicalType, Type as PhysicalType};
use ::parquet::column::reader::ColumnReaderImpl;
use ::parquet::data_type::{ByteArrayType, DataType, Int32Type, Int64Type};
use ::parquet::errors::ParquetError;
use ::parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use ::parquet::schema::types::ColumnDescPtr;

use super::{Document, DocumentError, Fields, Record, RepoFile, SkipReason, Skipped};

/// Rows decoded at a time.
pub const BATCH_ROWS: usize = 1024;

type Result<T, E = ParquetError> = std::result::Result<T, E>;

/// The records of one Parquet file, in row order.
pub struct ParquetRecords {
    path: PathBuf,
    stem: String,
    reader: SerializedFileReader<File>,
    text: (usize, ColumnDescPtr),
    /// Columns read as strings (integers rendered), in the order of `roles`.
    strings: Vec<(usize, ColumnDescPtr)>,
    roles: Roles,
    /// The values a `select` column must hold.
    selected: Vec<String>,
    /// The next row group to open.
    next_group: usize,
    /// Readers of the open row group and the rows left in it.
    group: Option<Group>,
    /// Rows read so far.
    row: u64,
    pending: VecDeque<Record>,
    done: bool,
}

struct Group {
    text: Column<ByteArrayType>,
    strings: Vec<StringColumn>,
    rows_left: usize,
}

/// Which of [`ParquetRecords::strings`] is what.
#[derive(Debug, Clone, Copy, Default)]
struct Roles {
    id: Option<usize>,
    select: Option<usize>,
    /// Repository and path.
    group: Option<(usize, usize)>,
}

impl ParquetRecords {
    /// Reads the footer and finds the columns; an error names the file.
    pub fn open(path: &Path, fields: &Fields) -> Result<Self, DocumentError> {
        let error = |msg: String| DocumentError::Open {
            path: path.into(),
            err: std::io::Error::new(std::io::ErrorKind::InvalidData, msg),
        };
        let file = File::open(path).map_err(|err| DocumentError::Open {
            path: path.into(),
            err,
        })?;
        let reader = match catch_unwind(AssertUnwindSafe(|| SerializedFileReader::new(file))) {
            Ok(Ok(reader)) => reader,
            Ok(Err(e)) => return Err(error(format!("not a readable Parquet file: {e}"))),
            Err(panic) => {
                return Err(error(format!(
                    "not a readable Parquet file: {}",
                    panic_message(&*panic)
                )));
            }
        };
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let find = |name: &str| {
            let found = schema
                .columns()
                .iter()
                .position(|c| c.path().string() == name);
            let Some(index) = found else {
                let present: Vec<String> =
                    schema.columns().iter().map(|c| c.path().string()).collect();
                return Err(error(format!(
                    "no column {name:?} (columns: {})",
                    present.join(", ")
                )));
            };
            let descr = schema.column(index);
            if descr.max_rep_level() > 0 {
                return Err(error(format!(
                    "column {name:?} is repeated (a list), not one value a row"
                )));
            }
            Ok((index, descr))
        };
        let text = find(&fields.text)?;
        if !holds_strings(&text.1) {
            return Err(error(format!(
                "column {:?} holds {}, not strings",
                fields.text,
                type_name(&text.1)
            )));
        }
        let mut strings = Vec::new();
        let mut string_column = |name: &str, what: &str| {
            let (index, descr) = find(name)?;
            if !matches!(
                descr.physical_type(),
                PhysicalType::BYTE_ARRAY | PhysicalType::INT32 | PhysicalType::INT64
            ) {
                return Err(error(format!(
                    "{what} column {name:?} holds {}, not strings or integers",
                    type_name(&descr)
                )));
            }
            strings.push((index, descr));
            Ok(strings.len() - 1)
        };
        let roles = Roles {
            id: fields
                .id
                .as_deref()
                .map(|f| string_column(f, "id"))
                .transpose()?,
            select: fields
                .select
                .as_ref()
                .map(|s| string_column(&s.field, "select"))
                .transpose()?,
            group: match &fields.group {
                None => None,
                Some(g) => Some((
                    string_column(&g.repo, "repository")?,
                    string_column(&g.path, "path")?,
                )),
            },
        };
        // Codecs this build lacks (Brotli, LZO) are an error now, not a skip later.
        let columns: Vec<&(usize, ColumnDescPtr)> =
            std::iter::once(&text).chain(&strings).collect();
        for group in reader.metadata().row_groups() {
            for (index, descr) in &columns {
                let codec = group.column(*index).compression();
                if !matches!(
                    codec,
                    Compression::UNCOMPRESSED
                        | Compression::SNAPPY
                        | Compression::GZIP(_)
                        | Compression::ZSTD(_)
                        | Compression::LZ4
                        | Compression::LZ4_RAW
                ) {
                    return Err(error(format!(
                        "column {:?} is compressed with {codec}, which this build does not read \
                         (it reads snappy, gzip, zstd, lz4)",
                        descr.path().string()
                    )));
                }
            }
        }
        Ok(ParquetRecords {
            path: path.into(),
            stem: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            reader,
            text,
            strings,
            roles,
            selected: fields
                .select
                .as_ref()
                .map(|s| s.values.clone())
                .unwrap_or_default(),
            next_group: 0,
            group: None,
            row: 0,
            pending: VecDeque::new(),
            done: false,
        })
    }

    fn skipped(&self, reason: SkipReason, line: u64, detail: String) -> Record {
        Err(Skipped::new(reason, &self.path, line, detail))
    }

    /// Decodes the next batch of rows into `pending`; `false` at the end.
    fn fill(&mut self) -> Result<bool> {
        while self.group.as_ref().is_none_or(|g| g.rows_left == 0) {
            if self.next_group >= self.reader.num_row_groups() {
                return Ok(false);
            }
            let group = self.reader.get_row_group(self.next_group)?;
            let rows = usize::try_from(group.metadata().num_rows())
                .map_err(|_| ParquetError::General("negative row count".into()))?;
            let text = Column::open(&*group, &self.text)?;
            let strings = self
                .strings
                .iter()
                .map(|col| StringColumn::open(&*group, col))
                .collect::<Result<_>>()?;
            self.group = Some(Group {
                text,
                strings,
                rows_left: rows,
            });
            self.next_group += 1;
        }
        let group = self.group.as_mut().expect("a row group is open");
        let n = group.rows_left.min(BATCH_ROWS);
        let texts = group.text.read(n)?;
        let mut strings = group
            .strings
            .iter_mut()
            .map(|c| c.read(n))
            .collect::<Result<Vec<_>>>()?;
        group.rows_left -= n;
        let roles = self.roles;
        for (i, text) in texts.into_iter().enumerate() {
            self.row += 1;
            let mut take = |role: Option<usize>| role.and_then(|r| strings[r][i].take());
            let selected = take(roles.select);
            if let Some(column) = roles.select
                && !self.selected.iter().any(|v| Some(v) == selected.as_ref())
            {
                let field = self.strings[column].1.path().string();
                let found = selected.map_or("null".into(), |v| format!("{v:?}"));
                let record = self.skipped(
                    SkipReason::NotSelected,
                    self.row,
                    format!("{field} is {found}"),
                );
                self.pending.push_back(record);
                continue;
            }
            let id = take(roles.id);
            let file_of = roles
                .group
                .map(|(repo, path)| (take(Some(repo)), take(Some(path))));
            let record = match text {
                None => self.skipped(
                    SkipReason::MissingTextField,
                    self.row,
                    format!("column {:?} is null", self.text.1.path().string()),
                ),
                Some(bytes) => match String::from_utf8(bytes.data().to_vec()) {
                    Err(e) => self.skipped(
                        SkipReason::InvalidUtf8,
                        self.row,
                        e.utf8_error().to_string(),
                    ),
                    Ok(text) if text.trim().is_empty() => {
                        self.skipped(SkipReason::EmptyDocument, self.row, "no text".into())
                    }
                    Ok(text) => match file_of {
                        Some((Some(repo), Some(path))) => Ok(Some(RepoFile {
                            repo,
                            path,
                            line: self.row,
                        })),
                        Some(_) => Err("a null repository or path"),
                        None => Ok(None),
                    }
                    .map_or_else(
                        |detail| {
                            self.skipped(SkipReason::MissingGroupField, self.row, detail.into())
                        },
                        |file_of| {
                            Ok(Document {
                                id: id.unwrap_or_else(|| format!("{}:{}", self.stem, self.row)),
                                text,
                                file_of,
                            })
                        },
                    ),
                },
            };
            self.pending.push_back(record);
        }
        Ok(true)
    }
}

impl Iterator for ParquetRecords {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(record) = self.pending.pop_front() {
                return Some(record);
            }
            if self.done {
                return None;
            }
            let detail = match catch_unwind(AssertUnwindSafe(|| self.fill())) {
                Ok(Ok(true)) => continue,
                Ok(Ok(false)) => {
                    self.done = true;
                    return None;
                }
                Ok(Err(e)) => e.to_string(),
                Err(panic) => panic_message(&*panic),
            };
            // The rest of the file is lost; the skip is at the first row not read.
            self.done = true;
            return Some(self.skipped(SkipReason::CorruptStream, self.row + 1, detail));
        }
    }
}

/// A flat column of one row group: one value or null a row.
struct Column<T: DataType> {
    reader: ColumnReaderImpl<T>,
    max_def: i16,
    defs: Vec<i16>,
    values: Vec<T::T>,
}

impl<T: DataType> Column<T> {
    fn open(group: &dyn RowGroupReader, (index, descr): &(usize, ColumnDescPtr)) -> Result<Self> {
        Ok(Column {
            reader: ColumnReaderImpl::new(descr.clone(), group.get_column_page_reader(*index)?),
            max_def: descr.max_def_level(),
            defs: Vec::new(),
            values: Vec::new(),
        })
    }

    /// The next `n` rows, `None` where null.
    fn read(&mut self, n: usize) -> Result<Vec<Option<T::T>>> {
        self.defs.clear();
        self.values.clear();
        let (rows, _, _) =
            self.reader
                .read_records(n, Some(&mut self.defs), None, &mut self.values)?;
        if rows != n {
            return Err(ParquetError::EOF(format!(
                "the column chunk ends {} rows early",
                n - rows
            )));
        }
        if self.max_def == 0 {
            return Ok(self.values.drain(..).map(Some).collect());
        }
        let mut values = self.values.drain(..);
        let out: Vec<Option<T::T>> = self
            .defs
            .iter()
            .map(|&d| {
                if d == self.max_def {
                    values.next()
                } else {
                    None
                }
            })
            .collect();
        if out.len() != n || values.next().is_some() {
            return Err(ParquetError::General(
                "definition levels do not match the values".into(),
            ));
        }
        Ok(out)
    }
}

/// A column of strings or integers, read as strings.
enum StringColumn {
    Bytes(Column<ByteArrayType>),
    Int32(Column<Int32Type>),
    Int64(Column<Int64Type>),
}

impl StringColumn {
    fn open(group: &dyn RowGroupReader, column: &(usize, ColumnDescPtr)) -> Result<Self> {
        Ok(match column.1.physical_type() {
            PhysicalType::INT32 => StringColumn::Int32(Column::open(group, column)?),
            PhysicalType::INT64 => StringColumn::Int64(Column::open(group, column)?),
            _ => StringColumn::Bytes(Column::open(group, column)?),
        })
    }

    fn read(&mut self, n: usize) -> Result<Vec<Option<String>>> {
        fn render<T>(values: Vec<Option<T>>, f: impl Fn(T) -> String) -> Vec<Option<String>> {
            values.into_iter().map(|v| v.map(&f)).collect()
        }
        Ok(match self {
            StringColumn::Bytes(c) => render(c.read(n)?, |b| {
                String::from_utf8_lossy(b.data()).into_owned()
            }),
            StringColumn::Int32(c) => render(c.read(n)?, |v| v.to_string()),
            StringColumn::Int64(c) => render(c.read(n)?, |v| v.to_string()),
        })
    }
}

/// Byte arrays that are text: UTF-8 strings (annotated or not), JSON, enums.
fn holds_strings(descr: &ColumnDescPtr) -> bool {
    descr.physical_type() == PhysicalType::BYTE_ARRAY
        && match descr.logical_type_ref() {
            Some(logical) => matches!(
                logical,
                LogicalType::String | LogicalType::Json | LogicalType::Enum
            ),
            None => matches!(
                descr.converted_type(),
                ConvertedType::NONE
                    | ConvertedType::UTF8
                    | ConvertedType::JSON
                    | ConvertedType::ENUM
            ),
        }
}

fn type_name(descr: &ColumnDescPtr) -> String {
    match descr.logical_type_ref() {
        Some(logical) => format!("{} ({logical:?})", descr.physical_type()),
        None if descr.converted_type() != ConvertedType::NONE => {
            format!("{} ({})", descr.physical_type(), descr.converted_type())
        }
        None => descr.physical_type().to_string(),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let msg = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    format!("the Parquet decoder panicked: {msg}")
}
