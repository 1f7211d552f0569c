//! Documents, labels and the SFT mask convention of a packed sequence.

use prolong_train::{Error, PackedSequence};

#[test]
fn labels_stay_within_documents() {
    let ids: Vec<u32> = (100..110).collect();
    let seq = PackedSequence::new(ids, &[[0, 4], [4, 5], [5, 8]], None).unwrap();
    // tokens 8 and 9 are covered by no piece: one-token documents of their own
    let segs: Vec<_> = seq.segments().to_vec();
    assert_eq!(segs, vec![0..4, 4..5, 5..8, 8..9, 9..10]);
    assert_eq!(seq.label_positions(), &[0, 1, 2, 5, 6]);
    assert_eq!(seq.label_targets(), &[101, 102, 103, 106, 107]);
    assert_eq!(seq.num_labels(), 5);
    assert_eq!(seq.positions(), (0..10).collect::<Vec<u32>>());
}

#[test]
fn mask_selects_predicted_tokens() {
    let ids: Vec<u32> = (0..8).collect();
    // prediction at t counts when mask[t + 1] == 1
    let mask = [1u8, 0, 1, 1, 0, 1, 1, 0];
    let seq = PackedSequence::new(ids, &[[0, 5], [5, 8]], Some(&mask)).unwrap();
    assert_eq!(seq.label_positions(), &[1, 2, 5]);
    assert_eq!(seq.label_targets(), &[2, 3, 6]);
}

#[test]
fn empty_pieces_are_ignored_and_single_covers_everything() {
    let seq = PackedSequence::new(vec![1, 2, 3], &[[0, 0], [0, 3], [3, 3]], None).unwrap();
    assert_eq!(seq.segments().to_vec(), vec![0..3]);
    assert_eq!(seq, PackedSequence::single(vec![1, 2, 3]));
    assert_eq!(seq.num_labels(), 2);
}

#[test]
fn malformed_indices_and_mask_are_errors() {
    let ids = || vec![0u32; 6];
    for bad in [
        vec![[0, 7]],
        vec![[3, 2]],
        vec![[0, 4], [3, 6]],
        vec![[3, 6], [0, 2]],
    ] {
        let err = PackedSequence::new(ids(), &bad, None).unwrap_err();
        assert!(matches!(err, Error::Sequence(_)), "{bad:?}");
    }
    let err = PackedSequence::new(ids(), &[[0, 6]], Some(&[1, 1])).unwrap_err();
    assert!(matches!(err, Error::Sequence(_)));
}
