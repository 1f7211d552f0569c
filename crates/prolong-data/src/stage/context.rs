//! What a step runs in: a recipe (paths resolved against it, its default
//! tokenizer) or the command line (paths as given), its output and task,
//! and tokenizers loaded once per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::recipe::{Recipe, RecipeError};
use crate::task::Task;
use crate::tokenize::Tokenizer;

/// A step's failure: a recipe error (a variable, as it is) or the stage's
/// own (the runner prefixes the step's name and stage).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error("{0}")]
    Failed(String),
}

pub type StepResult<T> = Result<T, StepError>;

/// A library error as the step's failure (its message).
pub fn or_fail<T, E: std::fmt::Display>(result: Result<T, E>) -> StepResult<T> {
    result.map_err(|e| StepError::Failed(e.to_string()))
}

/// A task of a step: where it runs and into what.
pub struct StepContext<'r> {
    /// None: the command line.
    recipe: Option<&'r Recipe>,
    tokenizers: &'r mut HashMap<PathBuf, Tokenizer>,
    /// The task to run (one-task stages: 0 of 1) and its output folder (mix
    /// and chat-synth: the file), resolved; in
    /// [`Stage::finish`](super::Stage::finish), its `world_size` is the
    /// run's. Plain data, so that it stays usable while a tokenizer is
    /// borrowed.
    pub task: Task<'r>,
}

impl<'r> StepContext<'r> {
    /// A step of `recipe` (None: run from its subcommand, paths as given).
    pub fn new(
        recipe: Option<&'r Recipe>,
        tokenizers: &'r mut HashMap<PathBuf, Tokenizer>,
        task: Task<'r>,
    ) -> Self {
        StepContext {
            recipe,
            tokenizers,
            task,
        }
    }

    /// A path of the step: in a recipe, variables expanded, relative to its
    /// folder unless absolute (see [`Recipe::path`]); else as given.
    pub fn path(&self, path: &Path) -> Result<PathBuf, RecipeError> {
        match self.recipe {
            Some(recipe) => recipe.path(&path.to_string_lossy()),
            None => Ok(path.to_path_buf()),
        }
    }

    pub fn paths(&self, paths: &[PathBuf]) -> Result<Vec<PathBuf>, RecipeError> {
        paths.iter().map(|p| self.path(p)).collect()
    }

    /// The step's tokenizer path: its own `tokenizer`, else the recipe's.
    pub fn tokenizer_path(&self, own: Option<&Path>) -> StepResult<PathBuf> {
        match own {
            Some(path) => Ok(self.path(path)?),
            None => match self.recipe.and_then(|r| Some((r, r.tokenizer.as_ref()?))) {
                Some((recipe, path)) => Ok(recipe.path(path)?),
                None => Err(StepError::Failed(
                    "no tokenizer (give `tokenizer` in the step or at the top of the recipe)"
                        .into(),
                )),
            },
        }
    }

    /// The hash of the step's tokenizer.json, which the tasks record (see
    /// [`crate::tokenize::stage::tokenizer_hash`]), without loading it.
    pub fn tokenizer_hash(&self, own: Option<&Path>) -> StepResult<String> {
        or_fail(crate::tokenize::stage::tokenizer_hash(
            &self.tokenizer_path(own)?,
        ))
    }

    /// The step's tokenizer, loaded once per path and run.
    pub fn tokenizer(&mut self, own: Option<&Path>) -> StepResult<&Tokenizer> {
        let path = self.tokenizer_path(own)?;
        if !self.tokenizers.contains_key(&path) {
            let tokenizer =
                Tokenizer::from_file(&path).map_err(|e| StepError::Failed(e.to_string()))?;
            self.tokenizers.insert(path.clone(), tokenizer);
        }
        Ok(&self.tokenizers[&path])
    }
}

/// The output folder's name: the default `domain` of tokenize and chat.
pub fn folder_name(out: &Path) -> String {
    out.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
