//! The depth-first walk's order: paths in byte order, as git sorts a tree.

/// Orders the names of one tree or folder so that a depth-first walk meets
/// paths in byte order: a folder sorts as its name followed by `/` (git's
/// own tree order).
pub(super) fn tree_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> std::cmp::Ordering {
    let slash = |dir: bool| dir.then_some(&b'/');
    a.iter()
        .chain(slash(a_dir))
        .cmp(b.iter().chain(slash(b_dir)))
}

/// `prefix/name`.
pub(super) fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(prefix.len() + 1 + name.len());
    full.extend_from_slice(prefix);
    if !full.is_empty() {
        full.push(b'/');
    }
    full.extend_from_slice(name);
    full
}

/// One level of the depth-first walk: a listing and the next entry to visit.
pub(super) struct Level<T> {
    pub(super) prefix: Vec<u8>,
    pub(super) entries: Vec<T>,
    pub(super) next: usize,
}
