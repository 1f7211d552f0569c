//! What the loader refuses in a tokenizer.json's ids, and how it says so.

use prolong_tokenizer::{Tokenizer, pretok};
use serde_json::{Value, json};

use crate::tiny::{bytes, split_seq, tiny_json};

#[test]
fn vocabulary_ids_far_beyond_its_size_or_duplicate_are_refused_by_token() {
    let (v, _) = tiny_json(split_seq(pretok::LLAMA3_REGEX), false, false);
    let n = Tokenizer::from_bytes(&bytes(&v)).unwrap().vocab_size();
    let load = |f: &dyn Fn(&mut Value)| {
        let mut v = v.clone();
        f(&mut v);
        Tokenizer::from_bytes(&bytes(&v)).unwrap_err().to_string()
    };
    // An id of 4,000,000,000 made the loader allocate 32 GB and abort.
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(4_000_000_000u64));
    assert_eq!(
        e,
        format!(
            "tokenizer.json: token \"Heaven\" has id 4000000000, which leaves {} of the ids \
             below it unused (the vocabulary and added tokens have {n}; at most 65536 may be unused)",
            4_000_000_001 - n
        )
    );
    // From a file, the error names it.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tok.json");
    let mut bad = v.clone();
    bad["model"]["vocab"]["Heaven"] = json!(4_000_000_000u64);
    std::fs::write(&file, bytes(&bad)).unwrap();
    let e = Tokenizer::from_file(&file).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: token \"Heaven\" has id 4000000000",
            file.display()
        )),
        "{e}"
    );
    // Holes within the bound are what tokenizer.json allows (reserved ids).
    let reserved = Tokenizer::from_bytes(&bytes(&{
        let mut v = v.clone();
        v["added_tokens"][0]["id"] = json!(n + 1000);
        v
    }))
    .unwrap();
    assert_eq!(reserved.vocab_size(), n + 1001);
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(1u64 << 40));
    assert_eq!(
        e,
        "tokenizer.json: vocabulary token \"Heaven\" has id 1099511627776, not an integer below 2^32"
    );
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(-1));
    assert!(e.contains("\"Heaven\" has id -1, not an integer"), "{e}");
    let e = load(&|v| v["model"]["vocab"]["Heaven"] = json!(7));
    assert!(e.contains("share id 7") && e.contains("\"Heaven\""), "{e}");
    // An added token reusing a vocabulary id under another text.
    let e = load(&|v| v["added_tokens"][0]["id"] = json!(7));
    assert!(e.contains("share id 7"), "{e}");
    let e = load(&|v| v["added_tokens"][0]["id"] = json!(n as u64 + 70_000));
    assert!(
        e.contains(&format!(
            // Its own old id (the last) is unused too.
            "\"<|endoftext|>\" has id {}, which leaves 70001 of the ids",
            n + 70_000
        )),
        "{e}"
    );
}
