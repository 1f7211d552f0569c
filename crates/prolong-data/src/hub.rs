//! Hugging Face Hub datasets as inputs: `source = { hf = "org/name",
//! revision = "main", files = ["data/*.parquet"] }` in a tokenize step
//! resolves to the matching files of the local HF cache, laid out as
//! huggingface_hub and the `hf-hub` crate lay it out:
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//!   datasets--org--name/refs/main                 the commit of the branch
//!   datasets--org--name/snapshots/<commit>/PATH   the files (links into blobs/)
//! ```
//!
//! Files are found through `hf_hub::Cache`. This build reads the cache only
//! (the `hf-hub` crate without its network features): fill it with
//! `huggingface-cli download --repo-type dataset org/name --include 'GLOB'`
//! (or `hf download`), or build with `--features hub-download` to fetch the
//! missing files with hf-hub's blocking (ureq/rustls) client. With
//! `HF_HUB_OFFLINE=1` nothing is ever fetched.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::recipe::HubSource;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("bad file glob {glob:?}: {err}")]
    Glob { glob: String, err: String },
    #[error(
        "{repo}@{revision}: not in the HF cache {cache}{why}; fetch it with \
         `huggingface-cli download --repo-type dataset {repo} --revision {revision} --include '{globs}'`"
    )]
    NotCached {
        repo: String,
        revision: String,
        cache: PathBuf,
        globs: String,
        why: String,
    },
    #[error("{repo}@{revision}: no file of the cached snapshot {snapshot} matches {globs}")]
    NoMatch {
        repo: String,
        revision: String,
        snapshot: PathBuf,
        globs: String,
    },
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{repo}: download: {err}")]
    Download { repo: String, err: String },
}

/// Whether HF_HUB_OFFLINE asks for no network (1, true, yes, on).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The hub cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub.
pub fn cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) if !dir.is_empty() => Cache::new(PathBuf::from(dir)),
        _ => Cache::from_env(),
    }
}

fn repo(source: &HubSource) -> Repo {
    Repo::with_revision(
        source.hf.clone(),
        RepoType::Dataset,
        source.revision.clone(),
    )
}

/// The snapshot folder of `source` in `cache`: `refs/<revision>` names the
/// commit; a 40-hex revision is a commit itself.
pub fn snapshot_dir(cache: &Cache, source: &HubSource) -> Option<PathBuf> {
    let base = cache.path().join(repo(source).folder_name());
    let rev = &source.revision;
    let commit = if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        rev.clone()
    } else {
        std::fs::read_to_string(base.join("refs").join(rev))
            .ok()?
            .trim()
            .to_string()
    };
    let dir = base.join("snapshots").join(commit);
    dir.is_dir().then_some(dir)
}

fn globset(source: &HubSource) -> Result<globset::GlobSet, HubError> {
    let mut builder = globset::GlobSetBuilder::new();
    for g in &source.files {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| HubError::Glob {
                glob: g.clone(),
                err: e.to_string(),
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| HubError::Glob {
        glob: source.files.join(", "),
        err: e.to_string(),
    })
}

/// The cached files of `source` matching its globs, sorted by path.
pub fn resolve_cached(cache: &Cache, source: &HubSource) -> Result<Vec<PathBuf>, HubError> {
    let set = globset(source)?;
    let globs = source.files.join(" ");
    let Some(snapshot) = snapshot_dir(cache, source) else {
        return Err(HubError::NotCached {
            repo: source.hf.clone(),
            revision: source.revision.clone(),
            cache: cache.path().clone(),
            globs,
            why: if offline() {
                " (HF_HUB_OFFLINE is set)".into()
            } else {
                String::new()
            },
        });
    };
    let mut rel_paths = Vec::new();
    for entry in walkdir::WalkDir::new(&snapshot)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| HubError::Io {
            path: snapshot.clone(),
            err: e.into(),
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&snapshot)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        if set.is_match(&rel) {
            rel_paths.push(rel);
        }
    }
    // Through hf-hub's own lookup (refs → snapshots) where the revision is
    // a branch or tag; commits are looked up directly.
    let cached = cache.repo(repo(source));
    let mut files = Vec::new();
    for rel in rel_paths {
        let path = cached.get(&rel).unwrap_or_else(|| snapshot.join(&rel));
        files.push(path);
    }
    if files.is_empty() {
        return Err(HubError::NoMatch {
            repo: source.hf.clone(),
            revision: source.revision.clone(),
            snapshot,
            globs,
        });
    }
    Ok(files)
}

/// The local files of `source`: from the cache, fetching what is missing
/// first when built with `hub-download` and not offline.
pub fn resolve(source: &HubSource) -> Result<Vec<PathBuf>, HubError> {
    let cache = cache();
    #[cfg(feature = "hub-download")]
    if !offline() {
        download(&cache, source)?;
    }
    resolve_cached(&cache, source)
}

/// Lists the repository at `revision` and downloads the files matching the
/// globs into the cache (already cached files are not fetched again).
#[cfg(feature = "hub-download")]
pub fn download(cache: &Cache, source: &HubSource) -> Result<(), HubError> {
    let set = globset(source)?;
    let err = |e: hf_hub::api::sync::ApiError| HubError::Download {
        repo: source.hf.clone(),
        err: e.to_string(),
    };
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache.clone())
        .with_progress(true)
        .build()
        .map_err(err)?;
    let api_repo = api.repo(repo(source));
    let info = api_repo.info().map_err(err)?;
    for sibling in info.siblings {
        if set.is_match(&sibling.rfilename) {
            api_repo.get(&sibling.rfilename).map_err(err)?;
        }
    }
    Ok(())
}

/// `datasets--org--name` (for tests and messages).
pub fn folder_name(repo_id: &str) -> String {
    Repo::new(repo_id.to_string(), RepoType::Dataset).folder_name()
}

/// Whether `path` is inside the cache (for reports).
pub fn in_cache(path: &Path) -> bool {
    path.starts_with(cache().path())
}
