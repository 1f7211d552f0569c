//! Parsing recipes: unknown keys, duplicate outputs, variables, the pipelines.

use super::*;

fn parse_err(text: &str) -> String {
    match Recipe::parse(text, Path::new("pipelines/x.toml")) {
        Err(e @ RecipeError::At { .. }) => e.to_string(),
        other => panic!("expected an error with a line, got {other:?}"),
    }
}

#[test]
fn unknown_and_misplaced_keys_name_the_file_and_line() {
    let base = "[[step]]\nname = \"a\"\nstage = \"pack\"\ninputs = [\"x\"]\nout = \"y\"\nlen = 8\n";
    let msg = parse_err(&format!("{base}lenght = 9\n"));
    assert!(msg.starts_with("pipelines/x.toml:7:"), "{msg}");
    assert!(msg.contains("unknown field `lenght`"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");

    let msg = parse_err(&format!("{base}min_tokens = 9\n"));
    assert!(msg.starts_with("pipelines/x.toml:7:"), "{msg}");
    assert!(
        msg.contains("`min_tokens` does not apply to stage pack"),
        "{msg}"
    );

    let msg = parse_err(&format!("bogus = 1\n{base}"));
    assert!(msg.starts_with("pipelines/x.toml:1:"), "{msg}");

    let msg = parse_err(&base.replace("pack", "packer"));
    assert!(msg.starts_with("pipelines/x.toml:3:"), "{msg}");

    let msg = parse_err(&base.replace("len = 8\n", ""));
    assert!(msg.contains("stage pack needs `len`"), "{msg}");

    // Through the binary: one line, non-zero.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, format!("{base}\nlenght = 9\n")).unwrap();
    let out = bin().arg("run").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::assert_error_line(&stderr, &["bad.toml:8:"]);
}

/// Two steps writing one folder would skip or clobber each other's tasks.
#[test]
fn two_steps_with_the_same_out_are_an_error() {
    let step = |name: &str, out: &str| {
        format!(
            "[[step]]\nname = \"{name}\"\nstage = \"pack\"\ninputs = [\"x\"]\nout = \"{out}\"\nlen = 8\n"
        )
    };
    let msg = parse_err(&format!("{}{}", step("a", "y"), step("b", "y/")));
    assert!(msg.starts_with("pipelines/x.toml:11:"), "{msg}");
    assert!(
        msg.contains("steps \"a\" and \"b\" both write out = \"y/\""),
        "{msg}"
    );
    assert!(
        Recipe::parse(
            &format!("{}{}", step("a", "y"), step("b", "z")),
            Path::new("x.toml")
        )
        .is_ok()
    );
}

#[test]
fn variables_come_from_the_environment_then_vars() {
    let text = "[vars]\nA = \"from-vars\"\nB = \"${A}/b\"\n[[step]]\nname = \"m\"\nstage = \"mix\"\npreset = \"prolong-64k\"\nroot = \"${B}\"\nout = \"/abs/m.toml\"\n";
    let recipe = Recipe::parse(text, Path::new("/r/pipelines/x.toml")).unwrap();
    assert_eq!(recipe.expand("${B}").unwrap(), "from-vars/b");
    assert_eq!(
        recipe.path("${B}").unwrap(),
        Path::new("/r/pipelines/from-vars/b")
    );
    assert_eq!(
        recipe.path("/abs/m.toml").unwrap(),
        Path::new("/abs/m.toml")
    );
    assert!(recipe.expand("${PROLONG_SURELY_UNSET_VAR}").is_err());
    let path = std::env::var("PATH").unwrap();
    assert_eq!(recipe.expand("${PATH}").unwrap(), path);
}

/// A recipe whose `V0` is `V1` repeated `wide` times, `V1` is `V2` repeated,
/// ... down to `V{deep}` = `leaf`; step `m` writes to `${V0}`.
fn exponential_vars(wide: usize, deep: usize, leaf: &str) -> String {
    let mut text = String::from("[vars]\n");
    for level in 0..deep {
        text += &format!(
            "V{level} = \"{}\"\n",
            format!("${{V{}}}", level + 1).repeat(wide)
        );
    }
    text += &format!("V{deep} = \"{leaf}\"\n");
    text + "[[step]]\nname = \"m\"\nstage = \"mix\"\npreset = \"prolong-64k\"\nroot = \"r\"\nout = \"${V0}\"\n"
}

#[test]
fn exponentially_repeating_variables_are_an_error_not_a_hang() {
    let path = Path::new("/r/pipelines/x.toml");
    // 10^6 copies of 10 bytes: 10 MB, past the bound on size.
    let recipe = Recipe::parse(&exponential_vars(10, 6, "xxxxxxxxxx"), path).unwrap();
    let err = recipe.expand("${V0}").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "/r/pipelines/x.toml: {:?} expands to more than 65536 bytes \
             (variables that repeat each other grow exponentially)",
            "${V3}".repeat(10)
        )
    );
    // Empty leaves take no room but 10^5 substitutions: past the bound on work.
    let recipe = Recipe::parse(&exponential_vars(10, 5, ""), path).unwrap();
    let err = recipe.expand("${V0}").unwrap_err().to_string();
    assert!(
        err.ends_with("takes more than 10000 substitutions (variables that repeat each other grow exponentially)"),
        "{err}"
    );
    // Within the bounds it expands.
    let recipe = Recipe::parse(&exponential_vars(4, 3, "ab"), path).unwrap();
    assert_eq!(recipe.expand("${V0}").unwrap(), "ab".repeat(64));

    // The reported case, ten wide and twelve deep, through `run --list`: it
    // aborted after 15 s.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bomb.toml");
    std::fs::write(&file, exponential_vars(10, 12, "x")).unwrap();
    let out = bin().arg("run").arg(&file).arg("--list").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::assert_error_line(&stderr, &["bomb.toml", "grow exponentially"]);
}

#[test]
fn the_pipelines_recipes_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    for (name, steps) in [
        ("corpus.toml", 23),
        ("prolong-64k.toml", 22),
        ("prolong-512k.toml", 10),
    ] {
        let recipe = Recipe::load(&root.join(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(recipe.steps.len(), steps, "{name}");
        for step in &recipe.steps {
            recipe
                .path(&step.out().to_string_lossy())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
