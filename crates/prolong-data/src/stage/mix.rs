//! `mix`: the mixture manifest prolong-train reads (see [`crate::mix`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::context::folder_name;
use super::{Stage, StepContext, StepError, StepResult, or_fail};
use crate::mix::{
    Manifest, MixError, Preset, StreamSpec, build_manifest, preset_streams,
    write_manifest,
};

/// One stream: `[NAME=]DIR@PROPORTION` on the command line, `{ name, path,
/// proportion }` in a recipe.
#[derive(Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamSpecKey {
    /// The stream's name (default: the path's folder name).
    pub name: Option<String>,
    pub path: PathBuf,
    pub proportion: f64,
}

impl std::str::FromStr for StreamSpecKey {
    type Err = MixError;

    fn from_str(arg: &str) -> Result<Self, MixError> {
        let s = StreamSpec::parse(arg)?;
        Ok(StreamSpecKey {
            name: Some(s.name),
            path: s.path,
            proportion: s.proportion,
        })
    }
}

#[derive(clap::Args, Deserialize, schemars::JsonSchema, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MixStep {
    /// Streams, [NAME=]DIR@PROPORTION (not with --preset).
    #[arg(value_name = "STREAM")]
    #[serde(default)]
    pub streams: Vec<StreamSpecKey>,
    /// The manifest file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// ProLong's released mixture: prolong-64k or prolong-512k.
    #[arg(long, requires = "root", value_parser = ["prolong-64k", "prolong-512k"])]
    pub preset: Option<String>,
    /// The folder holding the preset's folders.
    #[arg(long, requires = "preset")]
    pub root: Option<PathBuf>,
    /// Leave out preset folders that are missing and renormalise the rest.
    #[arg(long, requires = "preset")]
    #[serde(default)]
    pub allow_missing: bool,
    /// Require this sequence length of every stream.
    #[arg(long)]
    pub sequence_length: Option<u64>,
}

impl MixStep {
    /// The manifest: the streams (or the preset's, under `root`) with each
    /// path through `path`; errors are the stage's messages.
    pub fn manifest(
        &self,
        path: impl Fn(&Path) -> StepResult<PathBuf>,
    ) -> StepResult<Manifest> {
        let (streams, preset, missing) = match (&self.preset, &self.root) {
            (Some(name), Some(root)) => {
                if !self.streams.is_empty() {
                    return Err(StepError::Failed(
                        "give either streams or --preset, not both".into(),
                    ));
                }
                let preset = Preset::from_name(name).ok_or_else(|| {
                    StepError::Failed(format!(
                        "unknown preset {name:?} (prolong-64k, prolong-512k)"
                    ))
                })?;
                let (streams, missing) =
                    or_fail(preset_streams(preset, &path(root)?, self.allow_missing))?;
                (streams, Some(preset), missing)
            }
            _ => {
                if self.streams.is_empty() {
                    return Err(StepError::Failed(
                        "no streams: give [NAME=]DIR@PROPORTION arguments or --preset with --root"
                            .into(),
                    ));
                }
                let mut streams = Vec::new();
                for s in &self.streams {
                    let path = path(&s.path)?;
                    streams.push(StreamSpec {
                        name: s.name.clone().unwrap_or_else(|| folder_name(&path)),
                        path,
                        proportion: s.proportion,
                    });
                }
                (streams, None, Vec::new())
            }
        };
        let mut manifest = or_fail(build_manifest(&streams, self.sequence_length))?;
        manifest.preset = preset.map(|p| p.name().to_string());
        manifest.missing = missing;
        Ok(manifest)
    }
}

impl Stage for MixStep {
    fn check(&self, name: &str) -> Result<(), (&'static str, String)> {
        if self.streams.is_empty() == self.preset.is_none() {
            return Err((
                "name",
                format!("step {name:?}: mix takes either `streams` or `preset` (with `root`)"),
            ));
        }
        if self.preset.is_some() && self.root.is_none() {
            return Err(("preset", format!("step {name:?}: stage mix needs `root`")));
        }
        Ok(())
    }

    /// The manifest is rewritten only when it would change (streams redone
    /// or edited).
    fn run_task(&self, cx: &mut StepContext<'_>) -> StepResult<Option<String>> {
        let out = cx.task.out;
        let manifest = self.manifest(|p| Ok(cx.path(p)?))?;
        let dir = out.parent().map(Path::to_path_buf).unwrap_or_default();
        let text = or_fail(manifest.render(&dir))?;
        if std::fs::read_to_string(out).is_ok_and(|old| old == text) {
            return Ok(None);
        }
        or_fail(write_manifest(&manifest, out))?;
        Ok(Some(format!(
            "{} streams, sequence length {}, {} samples",
            manifest.streams.len(),
            manifest.sequence_length,
            manifest.total_samples
        )))
    }
}
