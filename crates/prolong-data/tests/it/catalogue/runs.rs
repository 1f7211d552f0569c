//! Malformed repositories and recipes, and stages that would overwrite their input.

use super::*;

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

/// `d/outside`, a repository outside the input whose bytes must never be read.
fn outside_repo(d: &Path) -> std::path::PathBuf {
    let outside = d.join("outside");
    git_repo(&outside, false, &[("s.py", "SECRET=1\n")]);
    outside
}

/// [`outside_repo`] and `d/in/v`, an entry of the input holding own.py.
fn outside_and_entry(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let entry = d.join("in/v");
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::write(entry.join("own.py"), "x=1\n").unwrap();
    (outside_repo(d), entry)
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

const REPOS: &[&str] = &["repos", "{dir}/in", "--out", "{dir}/out", "--json"];

const RUN_LIST: &[&str] = &["run", "{dir}/r.toml", "--list"];

const fn repos_skipped(counts: &'static [(&'static str, u64)]) -> Outcome {
    skipped("/stats/repos_skipped", counts)
}

const fn files_skipped(counts: &'static [(&'static str, u64)]) -> Outcome {
    skipped("/stats/files_skipped", counts)
}

pub(super) const CASES: &[Case] = &[
    // Repositories: every byte from inside the entry, bounded work.
    Case {
        name: "repos_gitdir_file_redirects",
        build: |d| {
            let (outside, entry) = outside_and_entry(d);
            let gitdir = format!("gitdir: {}\n", outside.join(".git").display());
            std::fs::write(entry.join(".git"), gitdir).unwrap();
        },
        args: REPOS,
        outcome: repos_skipped(&[("redirected_git_dir", 1)]),
    },
    Case {
        name: "repos_git_link_redirects",
        build: |d| {
            let (outside, entry) = outside_and_entry(d);
            std::os::unix::fs::symlink(outside.join(".git"), entry.join(".git")).unwrap();
        },
        args: REPOS,
        outcome: repos_skipped(&[("redirected_git_dir", 1)]),
    },
    Case {
        name: "repos_alternates_redirect",
        build: |d| {
            let outside = outside_repo(d);
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
