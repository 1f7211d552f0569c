//! The mix stage: manifests that prolong-train reads back, presets with and
//! without missing folders, and the checks on streams.

use crate::common;

use std::path::{Path, PathBuf};

use prolong_data::mix::{
    MixError, Preset, StreamSpec, build_manifest, preset_streams, write_manifest,
};
use prolong_mds::{Array, MdsWriter, Value, WriterOptions};
use prolong_train::data::Mixture;

/// A packed dataset of `n` sequences of `len` tokens.
fn write_packed(dir: &Path, n: usize, len: usize) {
    let mut w = MdsWriter::create(
        dir,
        &[
            ("domain", "str"),
            ("indices", "ndarray:uint32"),
            ("input_ids", "ndarray:uint32"),
            ("length", "int"),
        ],
        WriterOptions::default(),
    )
    .unwrap();
    for i in 0..n {
        let ids: Vec<u32> = (0..len as u32).map(|k| k + i as u32).collect();
        let indices = [0u32, len as u32];
        w.write(&[
            ("domain", Value::Str("x".into())),
            (
                "indices",
                Value::Array(Array::from_u32(&indices).with_shape(vec![1, 2])),
            ),
            ("input_ids", Value::Array(Array::from_u32(&ids))),
            ("length", Value::Int(len as i64)),
        ])
        .unwrap();
    }
    w.finish().unwrap();
}

/// For each (NAME, n) of `streams`, a packed dataset `root/NAME` of `n`
/// sequences of `len` tokens.
fn write_streams(root: &Path, streams: &[(&str, usize)], len: usize) {
    for &(name, n) in streams {
        write_packed(&root.join(name), n, len);
    }
}

fn spec(name: &str, path: PathBuf, proportion: f64) -> StreamSpec {
    StreamSpec {
        name: name.into(),
        path,
        proportion,
    }
}

fn canon(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

#[test]
fn manifest_round_trips_through_the_trainers_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let packed = tmp.path().join("data/packed");
    let sizes = [("book-65536", 3), ("code-65536", 5), ("fineweb-edu", 2)];
    write_streams(&packed, &sizes, 64);
    let streams = vec![
        spec("book-65536", packed.join("book-65536"), 0.3),
        spec("code-65536", packed.join("code-65536"), 0.3),
        spec("fineweb-edu", packed.join("fineweb-edu"), 0.4),
    ];
    let manifest = build_manifest(&streams, None).unwrap();
    assert_eq!(manifest.sequence_length, 64);
    assert_eq!(manifest.total_samples, 10);
    let path = tmp.path().join("data/mix/stage1-64k.toml");
    let text = write_manifest(&manifest, &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert!(text.contains("path = \"../packed/book-65536\""), "{text}");
    assert!(text.contains("sequence_length = 64\n"), "{text}");
    assert!(text.contains("samples = 5\n"), "{text}");
    // No temporary files left beside it.
    assert_eq!(
        common::sorted_names(path.parent().unwrap()),
        ["stage1-64k.toml"]
    );

    let mixture = Mixture::from_manifest(&path).unwrap();
    assert_eq!(mixture.streams.len(), 3);
    for (got, want) in mixture.streams.iter().zip(&streams) {
        assert_eq!(canon(&got.path), canon(&want.path));
        assert!((got.proportion - want.proportion).abs() < 1e-12);
    }
    let p = mixture.normalized_proportions().unwrap();
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);

    // Proportions are written normalised; the given ones are kept as metadata.
    let unnormalised = vec![
        spec("book", packed.join("book-65536"), 3.0),
        spec("code", packed.join("code-65536"), 1.0),
    ];
    let manifest = build_manifest(&unnormalised, Some(64)).unwrap();
    let path = tmp.path().join("mix.toml");
    let text = write_manifest(&manifest, &path).unwrap();
    assert!(
        text.contains("proportion = 0.75\ngiven_proportion = 3.0\n"),
        "{text}"
    );
    let mixture = Mixture::from_manifest(&path).unwrap();
    assert_eq!(mixture.streams[0].proportion, 0.75);
    assert_eq!(
        canon(&mixture.streams[1].path),
        canon(&packed.join("code-65536"))
    );
}

#[test]
fn presets_map_folder_names_and_report_missing_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("prolong-data-64K");
    let present = [
        "thestackv1_concat_by_repo-65536",
        "book-65536",
        "fineweb-edu",
    ];
    for name in present {
        write_packed(&root.join(name), 2, 32);
    }
    // Every missing folder is named in one error, with the way out.
    let err = preset_streams(Preset::Prolong64k, &root, false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MixError::Missing { .. }));
    for name in [
        "fineweb-2023-50",
        "stackexchange",
        "dolmawiki",
        "textbooks",
        "tuluv2",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
    assert!(!msg.contains("book-65536"), "{msg}");
    assert!(msg.contains("--allow-missing"), "{msg}");

    // --allow-missing: the rest, renormalised (0.3, 0.3, 0.1 → 3/7, 3/7, 1/7).
    let (streams, missing) = preset_streams(Preset::Prolong64k, &root, true).unwrap();
    assert_eq!(missing.len(), 7);
    let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, present);
    let mut manifest = build_manifest(&streams, None).unwrap();
    manifest.preset = Some("prolong-64k".into());
    manifest.missing = missing;
    let path = tmp.path().join("mix/stage1.toml");
    let text = write_manifest(&manifest, &path).unwrap();
    assert!(text.contains("preset = \"prolong-64k\""), "{text}");
    assert!(text.contains("missing = [\"fineweb-2023-50\", "), "{text}");
    let mixture = Mixture::from_manifest(&path).unwrap();
    let p: Vec<f64> = mixture.streams.iter().map(|s| s.proportion).collect();
    for (got, want) in p.iter().zip([3.0 / 7.0, 3.0 / 7.0, 1.0 / 7.0]) {
        assert!((got - want).abs() < 1e-12, "{p:?}");
    }

    // Nothing present: an error even with --allow-missing.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = preset_streams(Preset::Prolong512k, &empty, true).unwrap_err();
    assert!(err.to_string().contains("none is present"), "{err}");
    assert!(err.to_string().contains("book-524288"), "{err}");

    // train_512K.sh's names for the long data (`...2-524288`) are found as well, and the
    // streams are named after the folders found.
    let root = tmp.path().join("prolong-data-512K");
    for name in [
        "thestackv1_concat_by_repo2-65536",
        "thestackv1_concat_by_repo2-524288",
        "book2-65536",
        "book-524288",
    ] {
        write_packed(&root.join(name), 2, 32);
    }
    let (streams, missing) = preset_streams(Preset::Prolong512k, &root, true).unwrap();
    let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "thestackv1_concat_by_repo2-65536",
            "thestackv1_concat_by_repo2-524288",
            "book2-65536",
            "book-524288"
        ]
    );
    assert!(streams[2].path.ends_with("book2-65536"));
    assert!(missing.contains(&"textbooks".to_string()), "{missing:?}");
    // The 64K preset has no such alternative names: none of its folders is there.
    let err = preset_streams(Preset::Prolong64k, &root, true).unwrap_err();
    assert!(err.to_string().contains("none is present"), "{err}");
}

#[test]
fn streams_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let empty = tmp.path().join("empty");
    write_packed(&a, 2, 16);
    write_packed(&b, 2, 32);
    write_packed(&empty, 0, 16);
    let not_mds = tmp.path().join("plain");
    std::fs::create_dir_all(&not_mds).unwrap();
    let cases = [
        (
            vec![spec("a", a.clone(), 1.0), spec("b", b.clone(), 1.0)],
            "a has 16, b has 32",
        ),
        (
            vec![spec("a", a.clone(), 1.0), spec("e", empty, 1.0)],
            "holds no samples",
        ),
        (vec![spec("p", not_mds, 1.0)], "no index.json"),
        (
            vec![spec("n", tmp.path().join("nope"), 1.0)],
            "no such folder",
        ),
        (vec![spec("a", a.clone(), -0.5)], "≥ 0"),
        (vec![spec("a", a.clone(), f64::NAN)], "finite"),
        (vec![spec("a", a.clone(), 0.0)], "sum to 0"),
        (
            vec![spec("a", a.clone(), 1.0), spec("a", b.clone(), 1.0)],
            "two streams",
        ),
        (vec![], "no streams"),
    ];
    for (streams, want) in cases {
        let err = build_manifest(&streams, None).unwrap_err();
        assert!(err.to_string().contains(want), "{err} (wanted {want:?})");
    }
    let err = build_manifest(&[spec("a", a.clone(), 1.0)], Some(65536)).unwrap_err();
    assert!(
        err.to_string()
            .contains("--sequence-length has 65536, a has 16"),
        "{err}"
    );
    // A zero proportion beside a positive one is allowed.
    let m = build_manifest(
        &[spec("a", a, 0.0), spec("c", tmp.path().join("a"), 2.0)],
        None,
    )
    .unwrap();
    assert_eq!(m.streams[0].proportion, 0.0);
}

#[test]
fn cli_writes_manifests_and_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    for (name, _) in Preset::Prolong64k.folders() {
        write_packed(&root.join(name), 1, 8);
    }
    let bin = env!("CARGO_BIN_EXE_prolong-data");
    let out = tmp.path().join("mix/stage1-64k.toml");
    let status = std::process::Command::new(bin)
        .args(["mix", "--preset", "prolong-64k", "--root"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mixture = Mixture::from_manifest(&out).unwrap();
    assert_eq!(mixture.streams.len(), 10);
    assert_eq!(mixture.streams[0].proportion, 0.3);

    // The 512K preset over the 64K folders: the missing ones, by name.
    let err = common::failed(
        std::process::Command::new(bin)
            .args(["mix", "--preset", "prolong-512k", "--root"])
            .arg(&root)
            .arg("--out")
            .arg(tmp.path().join("x.toml"))
            .output()
            .unwrap(),
    );
    assert!(
        err.starts_with("error: ")
            && err.contains("thestackv1_concat_by_repo-524288, book-524288")
            && err.contains("--allow-missing"),
        "{err}"
    );
    assert!(!tmp.path().join("x.toml").exists());

    // Explicit streams, relative paths, named.
    let out = tmp.path().join("m.toml");
    let output = common::succeeded(
        std::process::Command::new(bin)
            .current_dir(&root)
            .args([
                "mix",
                "book=book-65536@0.5",
                "tuluv2@0.5",
                "--print",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap(),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("name = \"book\"\npath = \"root/book-65536\""),
        "{text}"
    );
    assert!(
        text.contains("name = \"tuluv2\"\npath = \"root/tuluv2\""),
        "{text}"
    );
    assert_eq!(Mixture::from_manifest(&out).unwrap().streams.len(), 2);
}

/// Mix writes one file, its manifest; a corpus recipe has several mix steps
/// (pipelines/corpus.toml: stage 1 and 2, two SFT mixtures). A recipe of four
/// (two presets with missing folders allowed, two of listed streams) killed
/// at each of its twelve write steps (three per manifest: before the
/// temporary file, before the rename, after it), then re-run: the same bytes
/// as an uninterrupted run, no temporary file left.
#[test]
fn killed_mix_then_rerun_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let packed = tmp.path().join("packed");
    let sizes = [
        ("thestackv1_concat_by_repo-65536", 3),
        ("book-65536", 2),
        ("book-524288", 1),
        ("tuluv2", 4),
    ];
    write_streams(&packed, &sizes, 8);
    let recipe = tmp.path().join("mix.toml");
    std::fs::write(
        &recipe,
        r#"
[[step]]
name = "mix-stage1-64k"
stage = "mix"
preset = "prolong-64k"
root = "${PACKED}"
allow_missing = true
out = "${OUT}/stage1-64k.toml"

[[step]]
name = "mix-stage2-512k"
stage = "mix"
preset = "prolong-512k"
root = "${PACKED}"
allow_missing = true
out = "${OUT}/stage2-512k.toml"

[[step]]
name = "mix-sft"
stage = "mix"
streams = [{ name = "tuluv2", path = "${PACKED}/tuluv2", proportion = 1.0 }]
out = "${OUT}/sft.toml"

[[step]]
name = "mix-code-book"
stage = "mix"
streams = [
  { name = "code", path = "${PACKED}/thestackv1_concat_by_repo-65536", proportion = 0.25 },
  { name = "book", path = "${PACKED}/book-65536", proportion = 0.75 },
]
sequence_length = 8
out = "${OUT}/code-book.toml"
"#,
    )
    .unwrap();
    let command = |out: &Path| {
        let mut c = common::cli();
        c.arg("run")
            .arg(&recipe)
            .env("PACKED", &packed)
            .env("OUT", out);
        c
    };
    let points = common::assert_kill_and_rerun_is_identical(command, tmp.path(), 10);
    assert_eq!(points, 12);
    let clean = common::files(&tmp.path().join("clean"));
    assert_eq!(
        clean.keys().collect::<Vec<_>>(),
        [
            "code-book.toml",
            "sft.toml",
            "stage1-64k.toml",
            "stage2-512k.toml"
        ]
    );
}
