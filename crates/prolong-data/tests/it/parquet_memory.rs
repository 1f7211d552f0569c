//! Reading a big Parquet file keeps memory bounded: one 320 MB row group is
//! read with a peak resident set far below its size. Slow-ish (it writes the
//! file first), so run by hand: `cargo test --test it parquet_memory -- --ignored`.
#![cfg(all(feature = "parquet", target_os = "linux"))]

use std::fs::File;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use prolong_data::documents::{Fields, read_documents};

const ROWS: usize = 64_000;
const DOC_BYTES: usize = 5_000;

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

#[test]
#[ignore]
fn a_big_row_group_is_read_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.parquet");
    {
        let schema =
            Arc::new(parse_message_type("message m { OPTIONAL BYTE_ARRAY text (UTF8); }").unwrap());
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .build(),
        );
        let mut writer =
            SerializedFileWriter::new(File::create(&path).unwrap(), schema, props).unwrap();
        let mut rg = writer.next_row_group().unwrap();
        let mut col = rg.next_column().unwrap().unwrap();
        // Pseudo-random lowercase text, so that pages do not compress away.
        let mut rng = prolong_rng::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
        for chunk in 0..ROWS / 1000 {
            let docs: Vec<ByteArray> = (0..1000)
                .map(|i| {
                    let mut doc = format!("{} ", chunk * 1000 + i).into_bytes();
                    doc.extend(
                        (0..DOC_BYTES)
                            .map(|_| b"abcdefghij klmnopqrstuvwxyz"[rng.below(27) as usize]),
                    );
                    doc.into()
                })
                .collect();
            col.typed::<ByteArrayType>()
                .write_batch(&docs, Some(&[1; 1000]), None)
                .unwrap();
        }
        col.close().unwrap();
        rg.close().unwrap();
        writer.close().unwrap();
    }
    let size_mib = std::fs::metadata(&path).unwrap().len() >> 20;
    assert!(size_mib > 250, "{size_mib} MiB");
    // Forget the writer's peak (Linux: 5 resets VmHWM).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_mib();
    let mut n = 0;
    let mut bytes = 0;
    for record in read_documents(&path, &Fields::default()).unwrap() {
        let doc = record.unwrap();
        assert!(doc.text.starts_with(&format!("{n} ")));
        bytes += doc.text.len();
        n += 1;
    }
    assert_eq!(n, ROWS);
    let peak = peak_rss_mib();
    println!(
        "read {n} rows, {} MiB of text from a {size_mib} MiB file: peak RSS {peak} MiB (was {before} MiB before reading)",
        bytes >> 20
    );
    assert!(peak < before + 64, "peak {peak} MiB, before {before} MiB");
}
