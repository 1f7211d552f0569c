//! `INPUTS... --out DIR --tokenizer FILE`, shared by the commands that
//! tokenize text files into a dataset (tokenize, chat).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct TextIoArgs {
    /// Input files or folders.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output dataset folder.
    #[arg(long)]
    pub out: PathBuf,
    /// HF tokenizer.json.
    #[arg(long)]
    pub tokenizer: PathBuf,
}
