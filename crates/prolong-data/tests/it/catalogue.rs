//! The catalogue of malformed inputs for `prolong-data`: MDS datasets,
//! JSONL, Parquet and MediaWiki XML documents, tokenizer.json files,
//! repositories and recipes. Each row builds one bad input and names the
//! exact outcome: one error line naming the file and position, or the bad
//! record counted under its reason (see `common/catalogue.rs`).

use crate::common;

use std::path::Path;

use crate::common::catalogue::{Case, Outcome, run};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_prolong-data");

/// A copy of the golden MDS dataset `name` in `dir/ds`.
fn golden(dir: &Path, name: &str) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/mds-golden")
        .join(name);
    let to = dir.join("ds");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `dir/ds`, a copy of the golden dataset `name` with index.json edited by `f`.
fn golden_edited(dir: &Path, name: &str, f: impl FnOnce(&mut Value)) {
    golden(dir, name);
    let path = dir.join("ds/index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut index);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// The byte tokenizer as `dir/tokenizer.json` and `lines` as `dir/in.jsonl`.
fn jsonl(dir: &Path, lines: &[u8]) {
    common::write_byte_tokenizer(dir);
    std::fs::write(dir.join("in.jsonl"), lines).unwrap();
}

/// `dir/in.xml`: a MediaWiki dump holding `pages` (and the byte tokenizer).
fn wiki(dir: &Path, pages: &str) {
    common::write_byte_tokenizer(dir);
    let text = format!(
        "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\">\n\
         <siteinfo><sitename>W</sitename></siteinfo>\n{pages}"
    );
    std::fs::write(dir.join("in.xml"), text).unwrap();
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<page><title>{title}</title><ns>0</ns><id>1</id><revision><id>2</id><text xml:space=\"preserve\">{text}</text></revision></page>\n"
    )
}

/// `dir/in.parquet`: one row group of one REQUIRED column, `column` of
/// `kind` (BYTE_ARRAY strings or INT64), holding two rows.
#[cfg(feature = "parquet")]
fn parquet(dir: &Path, column: &str, strings: bool) {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    common::write_byte_tokenizer(dir);
    let kind = if strings { "BYTE_ARRAY" } else { "INT64" };
    let schema = format!("message m {{ REQUIRED {kind} {column}; }}");
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema).unwrap());
    let file = std::fs::File::create(dir.join("in.parquet")).unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut col = group.next_column().unwrap().unwrap();
    if strings {
        let rows: Vec<ByteArray> = vec!["one".into(), "two".into()];
        col.typed::<ByteArrayType>()
            .write_batch(&rows, None, None)
            .unwrap();
    } else {
        col.typed::<Int64Type>()
            .write_batch(&[1, 2], None, None)
            .unwrap();
    }
    col.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

/// The byte tokenizer's JSON with `f` applied, as `dir/tokenizer.json`, and
/// a one-line `dir/in.jsonl`.
fn tokenizer_edited(dir: &Path, f: impl FnOnce(&mut Value)) {
    let mut json: Value = serde_json::from_str(&common::byte_tokenizer_json()).unwrap();
    f(&mut json);
    std::fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
    std::fs::write(dir.join("in.jsonl"), "{\"text\": \"hi\"}\n").unwrap();
}

/// A git repository at `path` whose HEAD holds `files` (path, content).
fn git_repo(path: &Path, bare: bool, files: &[(&str, &str)]) -> git2::Repository {
    let repo = if bare {
        git2::Repository::init_bare(path).unwrap()
    } else {
        git2::Repository::init(path).unwrap()
    };
    {
        let mut builder = repo.treebuilder(None).unwrap();
        for (name, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            builder.insert(name, blob, 0o100644).unwrap();
        }
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();
        let sig =
            git2::Signature::new("t", "t@example.com", &git2::Time::new(1_700_000_000, 0)).unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[])
            .unwrap();
    }
    repo
}

/// The loose object file of `id` in the git folder `git_dir`.
fn loose(git_dir: &Path, id: git2::Oid) -> std::path::PathBuf {
    let id = id.to_string();
    git_dir.join("objects").join(&id[..2]).join(&id[2..])
}

/// `dir/r.toml` holding `text`.
fn recipe(dir: &Path, text: &str) {
    std::fs::write(dir.join("r.toml"), text).unwrap();
}

const PACK_STEP: &str =
    "[[step]]\nname = \"a\"\nstage = \"pack\"\ninputs = [\"x\"]\nout = \"y\"\nlen = 8\n";

const TOKENIZE: &[&str] = &[
    "tokenize",
    "{dir}/in.jsonl",
    "--out",
    "{dir}/out",
    "--tokenizer",
    "{dir}/tokenizer.json",
    "--json",
];
const TOKENIZE_XML: &[&str] = &[
    "tokenize",
    "{dir}/in.xml",
    "--out",
    "{dir}/out",
    "--tokenizer",
    "{dir}/tokenizer.json",
    "--json",
];
const TOKENIZE_PARQUET: &[&str] = &[
    "tokenize",
    "{dir}/in.parquet",
    "--out",
    "{dir}/out",
    "--tokenizer",
    "{dir}/tokenizer.json",
    "--json",
];
const VERIFY: &[&str] = &["verify", "{dir}/ds"];
const INSPECT: &[&str] = &["inspect", "{dir}/ds"];
const REPOS: &[&str] = &["repos", "{dir}/in", "--out", "{dir}/out", "--json"];
const RUN_LIST: &[&str] = &["run", "{dir}/r.toml", "--list"];

const fn skips(counts: &'static [(&'static str, u64)]) -> Outcome {
    Outcome::Skips {
        pointer: "/skipped/by_reason",
        counts,
    }
}

const fn repos_skipped(counts: &'static [(&'static str, u64)]) -> Outcome {
    Outcome::Skips {
        pointer: "/stats/repos_skipped",
        counts,
    }
}

const fn files_skipped(counts: &'static [(&'static str, u64)]) -> Outcome {
    Outcome::Skips {
        pointer: "/stats/files_skipped",
        counts,
    }
}

const CASES: &[Case] = &[
    // MDS: index.json.
    Case {
        name: "mds_index_not_json",
        build: |d| {
            golden(d, "prolong-packed");
            std::fs::write(d.join("ds/index.json"), "{\"shards\": [").unwrap();
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: EOF while parsing a list at line 1 column 12",
        ),
    },
    Case {
        name: "mds_index_bad_version",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][0]["version"] = 3.into()
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: version 3 (only 2 is supported)",
        ),
    },
    Case {
        name: "mds_index_missing_samples",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][1].as_object_mut().unwrap().remove("samples");
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: missing field `samples` at line 1 column 664",
        ),
    },
    Case {
        name: "mds_raw_bytes_2_pow_60",
        build: |d| {
            golden_edited(d, "zstd-hashed", |j| {
                j["shards"][1]["raw_data"]["bytes"] = (1u64 << 60).into()
            })
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "open {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 1: raw_data.bytes 1152921504606846976 is more than the 4294967295 bytes a shard's 32-bit offsets address",
        ),
    },
    Case {
        name: "mds_samples_2_pow_40",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][0]["samples"] = (1u64 << 40).into()
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: samples 1099511627776 cannot fit in raw_data.bytes 12840",
        ),
    },
    Case {
        name: "mds_shard_shorter_than_header",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][2]["raw_data"]["bytes"] = 2.into();
                j["shards"][2]["samples"] = 0.into();
            });
            let shard = d.join("ds/shard.00002.mds");
            let bytes = std::fs::read(&shard).unwrap();
            std::fs::write(&shard, &bytes[..2]).unwrap();
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/shard.00002.mds: bad shard: shorter than its 4-byte sample count",
        ),
    },
    Case {
        name: "mds_shard_cut_short",
        build: |d| {
            golden(d, "prolong-packed");
            let shard = d.join("ds/shard.00001.mds");
            let bytes = std::fs::read(&shard).unwrap();
            std::fs::write(&shard, &bytes[..bytes.len() - 10]).unwrap();
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "{dir}/ds/shard.00001.mds: bad shard: 12846 bytes, index.json says 12856",
        ),
    },
    Case {
        name: "mds_wrong_hash",
        build: |d| {
            golden_edited(d, "zstd-hashed", |j| {
                j["shards"][2]["zip_data"]["hashes"]["sha1"] = "00".repeat(20).into()
            })
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/shard.00002.mds.zstd: sha1 hash mismatch: index.json says 0000000000000000000000000000000000000000, file has b141d75f8574805674a81261b5e2ea5cc1a6a720",
        ),
    },
    Case {
        name: "mds_unknown_column_encoding",
        build: |d| {
            golden_edited(d, "sft-mask", |j| {
                j["shards"][0]["column_encodings"][0] =
                    "ndarray:uint64:4294967296,4294967296".into()
            })
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "open {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: column \"domain\": unknown encoding \"ndarray:uint64:4294967296,4294967296\"",
        ),
    },
    Case {
        name: "mds_input_ids_encoded_as_str",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                for shard in j["shards"].as_array_mut().unwrap() {
                    let names = shard["column_names"].clone();
                    let at = names
                        .as_array()
                        .unwrap()
                        .iter()
                        .position(|n| n == "input_ids")
                        .unwrap();
                    shard["column_encodings"][at] = "str".into();
                }
            })
        },
        args: &["stats", "{dir}/ds"],
        outcome: Outcome::Error(
            "{dir}/ds/index.json: not an MDS index: shard 0: column \"input_ids\" is str, expected ndarray:uint32",
        ),
    },
    Case {
        name: "mds_zstd_garbage",
        build: |d| {
            golden_edited(d, "zstd-hashed", |j| {
                // Without hashes, the zstd decoder itself meets the garbage.
                for shard in j["shards"].as_array_mut().unwrap() {
                    shard["hashes"] = json!([]);
                    shard["raw_data"]["hashes"] = json!({});
                    shard["zip_data"]["hashes"] = json!({});
                }
            });
            let zip = d.join("ds/shard.00000.mds.zstd");
            let len = std::fs::metadata(&zip).unwrap().len() as usize;
            std::fs::write(&zip, vec![0x5a; len]).unwrap();
        },
        args: INSPECT,
        outcome: Outcome::Error(
            "{dir}/ds/shard.00000.mds.zstd: bad shard: zstd: Unknown frame descriptor",
        ),
    },
    Case {
        name: "mds_basename_outside_the_folder",
        build: |d| {
            golden_edited(d, "prolong-packed", |j| {
                j["shards"][0]["raw_data"]["basename"] = "../shard.00000.mds".into()
            });
            std::fs::copy(d.join("ds/shard.00000.mds"), d.join("shard.00000.mds")).unwrap();
        },
        args: VERIFY,
        outcome: Outcome::Error(
            "verify {dir}/ds: {dir}/ds/index.json: not an MDS index: shard 0: basename \"../shard.00000.mds\" leaves the dataset folder",
        ),
    },
    // JSONL documents (tokenize): bad records are counted and skipped.
    Case {
        name: "jsonl_malformed_line",
        build: |d| jsonl(d, b"{\"text\": \"a\"}\n{\"text\": \"b\n{\"text\": \"c\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("malformed_json", 1)]),
    },
    Case {
        name: "jsonl_bom_on_first_line_is_read",
        build: |d| jsonl(d, b"\xef\xbb\xbf{\"text\": \"a\"}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[]),
    },
    Case {
        name: "jsonl_invalid_utf8",
        build: |d| jsonl(d, b"{\"text\": \"caf\xe9\"}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("invalid_utf8", 1)]),
    },
    Case {
        name: "jsonl_huge_line_within_bounds",
        build: |d| {
            let line = format!("{{\"text\": \"{}\"}}\n", "ab".repeat(1 << 20));
            jsonl(d, line.as_bytes())
        },
        args: TOKENIZE,
        outcome: skips(&[]),
    },
    Case {
        name: "jsonl_non_object_line",
        build: |d| jsonl(d, b"[1, 2]\n\"text\"\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("malformed_json", 2)]),
    },
    Case {
        name: "jsonl_missing_text_field",
        build: |d| jsonl(d, b"{\"body\": \"a\"}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("missing_text_field", 1)]),
    },
    Case {
        name: "jsonl_text_not_a_string",
        build: |d| jsonl(d, b"{\"text\": 12}\n{\"text\": null}\n{\"text\": \"b\"}\n"),
        args: TOKENIZE,
        outcome: skips(&[("text_not_a_string", 2)]),
    },
    Case {
        name: "jsonl_gz_cut_short",
        build: |d| {
            use std::io::Write;
            common::write_byte_tokenizer(d);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            for i in 0..2000 {
                writeln!(gz, "{{\"text\": \"document {i}\"}}").unwrap();
            }
            let bytes = gz.finish().unwrap();
            std::fs::write(d.join("in.jsonl.gz"), &bytes[..bytes.len() / 2]).unwrap();
        },
        args: &[
            "tokenize",
            "{dir}/in.jsonl.gz",
            "--out",
            "{dir}/out",
            "--tokenizer",
            "{dir}/tokenizer.json",
            "--json",
        ],
        outcome: skips(&[("corrupt_stream", 1)]),
    },
    // MediaWiki XML documents.
    Case {
        name: "xml_cut_inside_text",
        build: |d| {
            wiki(
                d,
                &format!(
                    "{}<page><title>B</title><ns>0</ns><id>3</id><revision><text>cut he",
                    page("A", "alpha")
                ),
            )
        },
        args: TOKENIZE_XML,
        outcome: skips(&[("truncated_page", 1)]),
    },
    Case {
        name: "xml_unclosed_text",
        build: |d| {
            wiki(
                d,
                &format!(
                    "<page><title>A</title><ns>0</ns><id>1</id><revision><text>never closed\n</revision></page>\n{}</mediawiki>\n",
                    page("B", "beta")
                ),
            )
        },
        args: TOKENIZE_XML,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.xml:4: malformed_xml (not well-formed XML at line 4, byte 177: ill-formed document: expected `</text>`, but `</revision>` was found)",
        ),
    },
    Case {
        name: "xml_malformed_file",
        build: |d| wiki(d, "<page><title>A</title></pag>\n</mediawiki>\n"),
        args: TOKENIZE_XML,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.xml:3: malformed_xml (not well-formed XML at line 3, byte 128: ill-formed document: expected `</page>`, but `</pag>` was found)",
        ),
    },
    // tokenizer.json.
    Case {
        name: "tokenizer_id_beyond_vocabulary",
        build: |d| tokenizer_edited(d, |j| j["model"]["vocab"]["zz"] = 4_000_000_000u64.into()),
        args: TOKENIZE,
        outcome: Outcome::Error(
            "{dir}/tokenizer.json: token \"zz\" has id 4000000000, which leaves 3999999744 of the ids below it unused (the vocabulary and added tokens have 257; at most 65536 may be unused)",
        ),
    },
    Case {
        name: "tokenizer_duplicate_ids",
        build: |d| tokenizer_edited(d, |j| j["model"]["vocab"]["zz"] = 7.into()),
        args: TOKENIZE,
        outcome: Outcome::Error("{dir}/tokenizer.json: tokens \"zz\" and \"ć\" share id 7"),
    },
    Case {
        name: "tokenizer_not_json",
        build: |d| {
            std::fs::write(d.join("tokenizer.json"), "{\"model\": ").unwrap();
            std::fs::write(d.join("in.jsonl"), "{\"text\": \"hi\"}\n").unwrap();
        },
        args: TOKENIZE,
        outcome: Outcome::Error(
            "{dir}/tokenizer.json: not valid JSON: EOF while parsing a value at line 1 column 10",
        ),
    },
    Case {
        name: "tokenizer_merge_of_unknown_tokens",
        build: |d| tokenizer_edited(d, |j| j["model"]["merges"] = json!(["h i"])),
        args: TOKENIZE,
        outcome: Outcome::Error(
            "{dir}/tokenizer.json: merge 1 (\"h\" \"i\"): \"hi\" is not in the vocabulary",
        ),
    },
    // Repositories: every byte from inside the entry, bounded work.
    Case {
        name: "repos_gitdir_file_redirects",
        build: |d| {
            let outside = d.join("outside");
            git_repo(&outside, false, &[("s.py", "SECRET=1\n")]);
            let entry = d.join("in/v");
            std::fs::create_dir_all(&entry).unwrap();
            std::fs::write(entry.join("own.py"), "x=1\n").unwrap();
            let gitdir = format!("gitdir: {}\n", outside.join(".git").display());
            std::fs::write(entry.join(".git"), gitdir).unwrap();
        },
        args: REPOS,
        outcome: repos_skipped(&[("redirected_git_dir", 1)]),
    },
    Case {
        name: "repos_git_link_redirects",
        build: |d| {
            let outside = d.join("outside");
            git_repo(&outside, false, &[("s.py", "SECRET=1\n")]);
            let entry = d.join("in/v");
            std::fs::create_dir_all(&entry).unwrap();
            std::fs::write(entry.join("own.py"), "x=1\n").unwrap();
            std::os::unix::fs::symlink(outside.join(".git"), entry.join(".git")).unwrap();
        },
        args: REPOS,
        outcome: repos_skipped(&[("redirected_git_dir", 1)]),
    },
    Case {
        name: "repos_alternates_redirect",
        build: |d| {
            let outside = d.join("outside");
            git_repo(&outside, false, &[("s.py", "SECRET=1\n")]);
            let repo = git_repo(&d.join("in/v.git"), true, &[("own.py", "x=1\n")]);
            let info = repo.path().join("objects/info");
            std::fs::create_dir_all(&info).unwrap();
            let objects = outside.join(".git/objects");
            std::fs::write(info.join("alternates"), format!("{}\n", objects.display())).unwrap();
        },
        args: REPOS,
        outcome: repos_skipped(&[("redirected_git_dir", 1)]),
    },
    Case {
        name: "repos_tree_bomb",
        build: |d| {
            // 10^6 paths from six trees.
            let repo = git2::Repository::init_bare(d.join("in/bomb.git")).unwrap();
            let blob = repo.blob(b"x=1\n").unwrap();
            let mut tree = None;
            for level in 0..6 {
                let mut b = repo.treebuilder(None).unwrap();
                for i in 0..10 {
                    match tree {
                        None => b.insert(format!("f{i}.py"), blob, 0o100644).unwrap(),
                        Some(t) => b.insert(format!("d{level}{i}"), t, 0o040000).unwrap(),
                    };
                }
                tree = Some(b.write().unwrap());
            }
            let tree = repo.find_tree(tree.unwrap()).unwrap();
            let sig = git2::Signature::new("t", "t@e.com", &git2::Time::new(0, 0)).unwrap();
            repo.commit(Some("HEAD"), &sig, &sig, "bomb", &tree, &[])
                .unwrap();
        },
        args: &[
            "repos",
            "{dir}/in",
            "--out",
            "{dir}/out",
            "--json",
            "--max-files",
            "1000",
        ],
        outcome: repos_skipped(&[("too_many_files", 1)]),
    },
    Case {
        name: "repos_missing_blob",
        build: |d| {
            let repo = git_repo(
                &d.join("in/r"),
                false,
                &[("a.py", "a=1\n"), ("b.py", "b=2\n")],
            );
            let blob = repo.blob(b"b=2\n").unwrap();
            std::fs::remove_file(loose(repo.path(), blob)).unwrap();
        },
        args: REPOS,
        outcome: files_skipped(&[("missing_object", 1)]),
    },
    Case {
        name: "repos_corrupt_tree_object",
        build: |d| {
            let repo = git_repo(&d.join("in/r"), true, &[("a.py", "a=1\n")]);
            let tree = repo.head().unwrap().peel_to_tree().unwrap().id();
            let path = loose(repo.path(), tree);
            let mut perms = std::fs::metadata(&path).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&path, perms).unwrap();
            std::fs::write(&path, b"not zlib at all").unwrap();
        },
        args: REPOS,
        outcome: repos_skipped(&[("corrupt_git", 1)]),
    },
    // Recipes.
    Case {
        name: "recipe_unknown_key",
        build: |d| recipe(d, &format!("{PACK_STEP}lenght = 9\n")),
        args: RUN_LIST,
        outcome: Outcome::Error(
            "{dir}/r.toml:7:1: unknown field `lenght`, expected one of `name`, `stage`, `inputs`, `out`, `len`, `min_length`, `split_by_lengths`, `intact`, `bos`, `eos`, `domain`, `compression`, `size_limit`",
        ),
    },
    Case {
        name: "recipe_variable_bomb",
        build: |d| {
            let mut text = String::from("[vars]\n");
            for level in 0..12 {
                text += &format!(
                    "V{level} = \"{}\"\n",
                    format!("${{V{}}}", level + 1).repeat(10)
                );
            }
            text += "V12 = \"x\"\n[[step]]\nname = \"m\"\nstage = \"mix\"\npreset = \"prolong-64k\"\nroot = \"r\"\nout = \"${V0}\"\n";
            recipe(d, &text)
        },
        args: RUN_LIST,
        outcome: Outcome::Error(
            "{dir}/r.toml: \"${V12}${V12}${V12}${V12}${V12}${V12}${V12}${V12}${V12}${V12}\" takes more than 10000 substitutions (variables that repeat each other grow exponentially)",
        ),
    },
    Case {
        name: "recipe_two_steps_same_out",
        build: |d| {
            recipe(
                d,
                &format!("{PACK_STEP}{}", PACK_STEP.replace("\"a\"", "\"b\"")),
            )
        },
        args: RUN_LIST,
        outcome: Outcome::Error(
            "{dir}/r.toml:11:1: steps \"a\" and \"b\" both write out = \"y\"; give each its own",
        ),
    },
    Case {
        name: "recipe_missing_input",
        build: |d| recipe(d, PACK_STEP),
        args: &["run", "{dir}/r.toml"],
        outcome: Outcome::Error(
            "step \"a\" (pack): {dir}/x/index.json: No such file or directory (os error 2)",
        ),
    },
    Case {
        name: "recipe_not_toml",
        build: |d| recipe(d, "[[step]\nname = 1\n"),
        args: RUN_LIST,
        outcome: Outcome::Error("{dir}/r.toml:1:8: unclosed array table, expected `]`"),
    },
    // Stages that would overwrite their input.
    Case {
        name: "filter_out_is_its_input",
        build: |d| golden(d, "prolong-packed"),
        args: &["filter", "{dir}/ds", "--out", "{dir}/ds"],
        outcome: Outcome::Error(
            "filter into {dir}/ds: --out {dir}/ds is the input {dir}/ds: a stage never writes where it reads; choose an output folder apart from the inputs",
        ),
    },
    Case {
        name: "merge_of_datasets_with_other_columns",
        build: |d| {
            golden(d, "prolong-packed");
            std::fs::rename(d.join("ds"), d.join("a")).unwrap();
            golden(d, "sft-mask");
            std::fs::rename(d.join("ds"), d.join("b")).unwrap();
            for sub in ["a", "b"] {
                std::fs::remove_file(d.join(sub).join("expected.json")).unwrap();
                std::fs::create_dir_all(d.join("root")).unwrap();
                std::fs::rename(d.join(sub), d.join("root").join(sub)).unwrap();
            }
        },
        args: &["merge", "{dir}/root"],
        outcome: Outcome::Error(
            "merge {dir}/root: {dir}/root/index.json: not an MDS index: shard 4 (b/shard.00000.mds) has columns domain:str, indices:ndarray:uint32, input_ids:ndarray:uint32, length:int, mask:ndarray:uint8, shard 0 (a/shard.00000.mds) has domain:str, indices:ndarray:uint32, input_ids:ndarray:uint32, length:int",
        ),
    },
    Case {
        name: "pack_out_is_its_input",
        build: |d| golden(d, "prolong-packed"),
        args: &["pack", "{dir}/ds", "--out", "{dir}/ds", "--len", "8"],
        outcome: Outcome::Error(
            "pack task proc0-1: --out {dir}/ds is the input {dir}/ds: a stage never writes where it reads; choose an output folder apart from the inputs",
        ),
    },
];

/// Parquet documents (the default `parquet` feature).
#[cfg(feature = "parquet")]
const PARQUET_CASES: &[Case] = &[
    Case {
        name: "parquet_not_parquet",
        build: |d| {
            common::write_byte_tokenizer(d);
            std::fs::write(d.join("in.parquet"), "{\"text\": \"not parquet\"}\n").unwrap();
        },
        args: TOKENIZE_PARQUET,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.parquet: not a readable Parquet file: Parquet error: Invalid Parquet file. Corrupt footer",
        ),
    },
    Case {
        name: "parquet_missing_column",
        build: |d| parquet(d, "body", true),
        args: TOKENIZE_PARQUET,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.parquet: no column \"text\" (columns: body)",
        ),
    },
    Case {
        name: "parquet_text_column_of_integers",
        build: |d| parquet(d, "text", false),
        args: TOKENIZE_PARQUET,
        outcome: Outcome::Error(
            "tokenize into {dir}/out: {dir}/in.parquet: column \"text\" holds INT64, not strings",
        ),
    },
];
#[cfg(not(feature = "parquet"))]
const PARQUET_CASES: &[Case] = &[];

#[test]
fn catalogue() {
    run(BIN, CASES.iter().chain(PARQUET_CASES));
}
