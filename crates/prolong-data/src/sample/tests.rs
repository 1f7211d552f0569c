//! Source arguments, targets and the seeded draw's random numbers.

#![cfg(test)]

use std::path::PathBuf;

use prolong_rng::SplitMix64;

use super::*;

#[test]
fn sources_parse_with_and_without_names() {
    let s = Source::parse("data/tok/fineweb@25").unwrap();
    assert_eq!((s.name.as_str(), s.share), ("fineweb", 25.0));
    assert_eq!(s.path, PathBuf::from("data/tok/fineweb"));
    let s = Source::parse("web=/x/y@0.5").unwrap();
    assert_eq!((s.name.as_str(), s.path.to_str().unwrap()), ("web", "/x/y"));
    assert!(Source::parse("data/tok/fineweb").is_err());
    assert!(Source::parse("a@b").is_err());
}

/// Sample's sources and mix's streams share one parser: the same messages
/// (the value named after the command's), but a DIR with no last component
/// is an error for a source and its own name for a stream.
#[test]
fn sources_and_streams_refuse_alike() {
    let source = |arg: &str| Source::parse(arg).unwrap_err().to_string();
    let stream = |arg: &str| crate::mix::StreamSpec::parse(arg).map_err(|e| e.to_string());
    assert_eq!(source("x"), "\"x\": expected [NAME=]DIR@SHARE");
    assert_eq!(
        stream("x").unwrap_err(),
        "\"x\": expected [NAME=]DIR@PROPORTION"
    );
    let nan = "\"a@b\": the text after the last '@' is not a number";
    assert_eq!(
        (source("a@b"), stream("a@b").unwrap_err()),
        (nan.into(), nan.into())
    );
    let unnamed = "cannot name the source after its path; use NAME=DIR@SHARE";
    assert_eq!(source("..@1"), format!("\"..@1\": {unnamed}"));
    assert_eq!(source("@1"), format!("\"@1\": {unnamed}"));
    let s = crate::mix::StreamSpec::parse("..@1").unwrap();
    assert_eq!((s.name.as_str(), s.path.to_str().unwrap()), ("..", ".."));
    assert_eq!(stream("@1").unwrap_err(), "\"@1\": empty path");
    assert_eq!(source("n=@1"), "\"n=@1\": empty path");
}

#[test]
fn targets_round_each_share() {
    let sources: Vec<Source> = SHORTMIX
        .iter()
        .map(|(n, s)| Source {
            name: n.to_string(),
            path: PathBuf::from(n),
            share: *s,
        })
        .collect();
    let t: Vec<u64> = targets(&sources, 1001)
        .unwrap()
        .iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(t, vec![250, 250, 100, 100, 100, 100, 100]);
}

#[test]
fn below_is_in_range_and_seeded() {
    let mut a = SplitMix64::new(7);
    let mut b = SplitMix64::new(7);
    for n in 1..1000 {
        let x = a.below(n);
        assert!(x < n);
        assert_eq!(x, b.below(n));
    }
}
