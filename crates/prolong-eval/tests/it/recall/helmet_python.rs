//! HELMET's own Python against ours (issue 16): its scorers on the same
//! predictions, and its truncation (`model_utils.tokenize`) with transformers'
//! fast tokenizer.

use super::*;

/// HELMET's scoring and truncation, written here from HELMET's utils.py, data.py and
/// model_utils.py (normalize_answer, substring_exact_match_score, parse_output, the
/// json_kv and ruler post_process with the system template put back before the
/// output, and tokenize()'s truncation for a model without chat template). Reads
/// {"scores": [[task, prediction, answers, prefix]], "cuts": [[tokenizer.json,
/// template_before, template_after, context, max_length, generation_max_length]]}.
const HELMET_PY: &str = r#"
import json, re, string, sys
from transformers import PreTrainedTokenizerFast

def normalize_answer(s):
    s = s.lower()
    s = ''.join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r'\b(a|an|the)\b', ' ', s)
    return ' '.join(s.split())

def sub_em(prediction, answers):
    return max(normalize_answer(a) in normalize_answer(prediction) for a in answers)

def parse_output(output, prefix):
    def lstrip_string(s, sub):
        return re.sub(f'^{re.escape(sub)}', '', s, flags=re.IGNORECASE)
    patterns = [re.compile(f"(?:{prefix})(.*)(?:\n|$)", flags=re.IGNORECASE), re.compile(r"(?:^)(.*)(?:\n|$)")]
    for pat in patterns:
        m = pat.search(output)
        if m is not None:
            return lstrip_string(m[1].strip(), prefix).strip()
    return None

def score(task, prediction, answers, prefix):
    output = prefix + prediction
    if task == "json_kv":
        s = sub_em(output, answers)
        parsed = parse_output(output, "corresponding value:")
        return float(max(s, sub_em(parsed, answers)))
    return sum(a.lower() in output.lower() for a in answers) / len(answers)

TOKS = {}

def cut(tok_file, before, after, context, max_length, gen):
    if tok_file not in TOKS:
        TOKS[tok_file] = PreTrainedTokenizerFast(tokenizer_file=tok_file)
    tok = TOKS[tok_file]
    fmt = lambda c: before + c + after
    n = len(tok([fmt(context)])["input_ids"][0])
    if n > max_length - gen:
        t = n - (max_length - gen)
        offsets = tok([context], return_offsets_mapping=True)["offset_mapping"][0]
        context = context[:offsets[-t][0]]
    return fmt(context)

# datasets' shuffle(seed=42): numpy's default_rng(42).permutation(n).
import numpy as np
req = json.load(sys.stdin)
print(json.dumps({"scores": [score(*c) for c in req["scores"]],
                  "cuts": [cut(*c) for c in req["cuts"]],
                  "perms": [np.random.default_rng(42).permutation(n).tolist() for n in req["perms"]]}))
"#;

#[test]
fn scores_and_truncation_equal_helmets_python() {
    let test = "scores_and_truncation_equal_helmets_python";
    let importable = std::process::Command::new("python3")
        .args(["-c", "import transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        eprintln!(
            "skipped {test}: python3 cannot import transformers (scripts/install-python-peers.sh)"
        );
        return;
    }
    let gold = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let kv_cases = [
        format!(" {gold}\nKey: x"),
        format!("CORRESPONDING VALUE: {gold}"),
        format!(" the value is \"{gold}\"."),
        " 3f2504e0 4f89 41d3 9a0c 0305e82c3301".into(),
        format!("\n\n{gold}"),
        format!(" corresponding value: Corresponding value:  {gold} \nmore"),
        format!(" {}", gold.to_uppercase()),
        " 9f2504e0-4f89-41d3-9a0c-0305e82c3301".into(),
        String::new(),
        format!(" An{gold}"),
        format!(" \u{1f}{gold}\u{a0}"),
    ];
    let answers = vec![
        "1234567".to_owned(),
        "7654321".to_owned(),
        "1111111".to_owned(),
    ];
    let ruler_cases = [
        " 1234567, 7654321 and 1111111.",
        " 1234567 and 765432.",
        " none",
        "1111111",
    ];
    let mut scores = Vec::new();
    for p in &kv_cases {
        scores.push((
            Task::JsonKv,
            p.clone(),
            vec![gold.to_owned()],
            "Corresponding value:".to_owned(),
        ));
    }
    for p in ruler_cases {
        scores.push((
            Task::NiahMultivalue,
            p.to_owned(),
            answers.clone(),
            "The special magic numbers for a-b mentioned in the provided text are".to_owned(),
        ));
    }

    // Truncation: the byte tokenizer with a post-processor adding BOS and EOS, and the
    // Llama-3 tokenizer when the fixture is there, on a context with multi-byte text.
    let dir = tempfile::tempdir().unwrap();
    let json = bos_eos_tokenizer_json();
    let byte_path = dir.path().join("byte.json");
    std::fs::write(&byte_path, json.to_string()).unwrap();
    let mut tokenizers = vec![byte_path];
    tokenizers.extend(fixture("tokenizer.json", test));
    let context: String = (0..200)
        .map(|i| {
            format!(
                "One of the special magic numbers for k-{i} is: {}. Né café “quoted”. ",
                1_000_000 + i
            )
        })
        .collect();
    let item = HelmetItem {
        task: Task::NiahMultikey2,
        context,
        query: "k-7".into(),
        type_needle_v: "number".into(),
        demos: Vec::new(),
        answers: vec!["1000007".into()],
    };
    let mv = MvTemplate::Head;
    let marker = "\u{0}CONTEXT\u{0}";
    let template = item.render(marker, mv);
    let (before, after) = template.split_once(marker).unwrap();
    let mut cuts = Vec::new();
    let mut ours = Vec::new();
    for path in &tokenizers {
        let bytes = std::fs::read(path).unwrap();
        let tok = Tokenizer::from_bytes(&bytes).unwrap();
        let model = ModelText::new(&tok, &bytes).unwrap();
        for length in [700, 1500, 3000, 20000] {
            let p = model.truncate(&item, mv, length, 50).unwrap();
            cuts.push(serde_json::json!([
                path,
                before,
                after,
                item.context,
                length,
                50
            ]));
            ours.push(p.prompt);
        }
    }
    let request = serde_json::json!({
        "scores": scores.iter().map(|(t, p, a, pre)| serde_json::json!([t.name(), p, a, pre])).collect::<Vec<_>>(),
        "cuts": cuts,
        "perms": [1, 2, 100, 600, 1000, 70_000],
    });
    let mut child = std::process::Command::new("python3")
        .args(["-c", HELMET_PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
    }
    let out = succeeded(child.wait_with_output().unwrap());
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for ((task, p, a, _), want) in scores.iter().zip(theirs["scores"].as_array().unwrap()) {
        assert_eq!(score(*task, p, a), want.as_f64().unwrap(), "{task} {p:?}");
    }
    let want: Vec<String> = serde_json::from_value(theirs["cuts"].clone()).unwrap();
    assert_eq!(ours.len(), want.len());
    for (i, (o, w)) in ours.iter().zip(&want).enumerate() {
        assert!(
            o == w,
            "cut {i}: ours {} bytes, HELMET's {}",
            o.len(),
            w.len()
        );
    }
    for perm in theirs["perms"].as_array().unwrap() {
        let perm: Vec<usize> = serde_json::from_value(perm.clone()).unwrap();
        assert_eq!(helmet_selection(perm.len(), perm.len()), perm);
    }
    // Some of them were cut, and some not.
    assert!(
        ours.iter()
            .any(|o| o.len() < item.render(&item.context, mv).len())
    );
    assert!(ours.iter().any(|o| *o == item.render(&item.context, mv)));
}
