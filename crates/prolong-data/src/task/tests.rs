//! Task names and shares, the output checks, markers and histograms.

#![cfg(test)]

use std::path::Path;

use super::*;

#[test]
fn tasks_take_every_nth_input_and_name_like_prolong() {
    let inputs: Vec<u32> = (0..10).collect();
    let t = TaskSpec::new(2, 4).unwrap();
    assert_eq!(t.take(&inputs).copied().collect::<Vec<_>>(), vec![2, 6]);
    assert_eq!(t.name(), "proc2-4");
    assert_eq!(TaskSpec::new(7, 64).unwrap().name(), "proc07-64");
    assert!(TaskSpec::new(4, 4).is_err());
    assert!(TaskSpec::new(0, 0).is_err());
}

#[test]
fn outputs_overlapping_an_input_are_refused_through_links_and_dots() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    std::fs::create_dir_all(input.join("a")).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let relation = |out: &Path| match check_apart(out, std::slice::from_ref(&input)) {
        Err(OutputError::Overlaps { relation, .. }) => relation,
        Err(e) => panic!("{e}"),
        Ok(()) => "apart",
    };
    assert_eq!(relation(&input), "is");
    assert_eq!(relation(&link), "is");
    assert_eq!(relation(&tmp.path().join("tok/a/../")), "is");
    assert_eq!(relation(&link.join("new/deeper")), "is inside");
    assert_eq!(relation(tmp.path()), "holds");
    // A sibling sharing the name's prefix, and a new folder beside it.
    assert_eq!(relation(&tmp.path().join("tok2")), "apart");
    assert_eq!(relation(&tmp.path().join("out/x")), "apart");
}

#[test]
fn markers_record_settings_and_a_change_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let t = TaskSpec::new(1, 2).unwrap();
    let settings = serde_json::json!({"domain": "web", "share": 0.1 + 0.2, "n": 3});
    t.complete(out, &serde_json::json!({}), &settings).unwrap();
    // Rank 0 (not done) checks rank 1's marker too.
    let t0 = TaskSpec::new(0, 2).unwrap();
    t0.check_output(out, &[], &settings).unwrap();
    let other = serde_json::json!({"domain": "book", "share": 0.1 + 0.2, "n": 3});
    let err = t0.check_output(out, &[], &other).unwrap_err().to_string();
    assert!(
        err.contains("proc1-2 was made with other settings"),
        "{err}"
    );
    assert!(err.contains("domain was \"web\", now \"book\""), "{err}");
    let fewer = serde_json::json!({"domain": "web", "share": 0.1 + 0.2});
    let err = t0.check_output(out, &[], &fewer).unwrap_err().to_string();
    assert!(err.contains("n was 3, now unset"), "{err}");
    // A marker of an older version, without settings, is not compared.
    std::fs::write(t.marker_path(out), b"").unwrap();
    t0.check_output(out, &[], &other).unwrap();
}

#[test]
fn histogram_buckets_by_powers_of_two() {
    let mut h = LengthHistogram::default();
    for n in [1, 2, 3, 4, 1000, 1023, 1024, 0] {
        h.add(n);
    }
    let got: Vec<(u64, u64, u64)> = h
        .buckets
        .iter()
        .map(|b| (b.min, b.max, b.documents))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, 1),
            (1, 1, 1),
            (2, 3, 2),
            (4, 7, 1),
            (512, 1023, 2),
            (1024, 2047, 1)
        ]
    );
    let mut twice = h.clone();
    twice.merge(&h);
    assert_eq!(twice.buckets.iter().map(|b| b.documents).sum::<u64>(), 16);
}
