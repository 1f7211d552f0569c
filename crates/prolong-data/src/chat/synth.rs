//! A small chat set the project makes itself, from a seed and plain texts
//! (the fixtures: the King James Bible and Gutenberg books; no third-party
//! conversations): each conversation quotes a passage of consecutive lines
//! of one text and asks questions whose answers are computed from it.
//!
//! * Passage: a text's non-blank lines, trimmed; from a random line, enough
//!   consecutive lines for 1,500..=12,000 characters (a few hundred to a few
//!   thousand tokens), joined with `\n`. The first user message is
//!   `Read this passage:\n\n{passage}\n\n{question}`; follow-up questions
//!   (1 to 3 in all, of different kinds) are user messages of their own.
//!   One conversation in four starts with a system message.
//! * Questions ([`Question`]): the line after a quoted line (one that occurs
//!   once), the word after a quoted three-word phrase (one that occurs once),
//!   line N, the first line, the last line, how often a word occurs (whole
//!   words, case and surrounding punctuation ignored: see [`count_word`]).
//!   The answer is the exact line, word or number.
//! * Randomness: conversation `i` draws from its own SplitMix64 stream
//!   ([`prolong_rng`]) seeded by `xxh3_64_with_seed(i as u64 little-endian,
//!   seed)`, so a seed gives the same bytes every time, and conversation `i`
//!   is the same whatever the number asked for.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Message, Role};
use crate::documents::{Format, read_documents};
use prolong_rng::SplitMix64;

/// Passage size in characters (bytes of UTF-8), inclusive.
const PASSAGE_CHARS: (usize, usize) = (1_500, 12_000);
/// A text needs at least this many non-blank lines to give passages.
const MIN_LINES: usize = 4;
/// Words in a quoted phrase.
const PHRASE_WORDS: usize = 3;
const SYSTEM_PROMPT: &str = "You answer questions about a passage exactly, quoting it where the answer is a line or a word.";

/// A text as lines: its non-blank lines, trimmed.
#[derive(Debug, Clone)]
pub struct Text {
    pub name: String,
    pub lines: Vec<String>,
}

impl Text {
    pub fn new(name: impl Into<String>, text: &str) -> Text {
        Text {
            name: name.into(),
            lines: text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(transparent)]
    Inputs(#[from] crate::StageError),
    #[error(transparent)]
    Documents(#[from] crate::documents::DocumentError),
    #[error("{0}: chat-synth reads plain texts (.txt, .md)")]
    NotText(PathBuf),
    #[error("{0}")]
    Unreadable(String),
    #[error("no text under {inputs:?} has {MIN_LINES} non-blank lines")]
    NoTexts { inputs: Vec<PathBuf> },
    #[error("{path}: output must end in .jsonl or .jsonl.zst")]
    OutputName { path: PathBuf },
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

/// Reads the texts of `inputs` (files or folders of .txt/.md), in sorted
/// path order; those with fewer than `MIN_LINES` lines are left out.
pub fn load_texts(inputs: &[PathBuf]) -> Result<Vec<Text>, SynthError> {
    let mut texts = Vec::new();
    for file in crate::tokenize::stage::input_files(inputs)? {
        if Format::of(&file) != Some(Format::Text) {
            return Err(SynthError::NotText(file));
        }
        for record in read_documents(&file, &Default::default())? {
            let doc = record.map_err(|skip| SynthError::Unreadable(skip.to_string()))?;
            let text = Text::new(doc.id, &doc.text);
            if text.lines.len() >= MIN_LINES {
                texts.push(text);
            }
        }
    }
    if texts.is_empty() {
        return Err(SynthError::NoTexts {
            inputs: inputs.to_vec(),
        });
    }
    Ok(texts)
}

/// The kinds of question, each answered exactly from the passage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    NextLine,
    WordAfter,
    LineN,
    FirstLine,
    LastLine,
    CountWord,
}

impl Question {
    const ALL: [Question; 6] = [
        Question::NextLine,
        Question::WordAfter,
        Question::LineN,
        Question::FirstLine,
        Question::LastLine,
        Question::CountWord,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Question::NextLine => "next_line",
            Question::WordAfter => "word_after",
            Question::LineN => "line_n",
            Question::FirstLine => "first_line",
            Question::LastLine => "last_line",
            Question::CountWord => "count_word",
        }
    }

    /// The question and its answer about `lines`, or `None` when the passage
    /// has nothing to ask it about (no unique line or phrase).
    fn ask(self, lines: &[String], rng: &mut SplitMix64) -> Option<(String, String)> {
        let words: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        match self {
            Question::NextLine => {
                let counts = occurrences(lines.iter().map(String::as_str));
                let once: Vec<usize> = (0..lines.len() - 1)
                    .filter(|&i| counts[lines[i].as_str()] == 1)
                    .collect();
                let i = *pick(&once, rng)?;
                Some((
                    format!("Which line comes right after the line \"{}\"?", lines[i]),
                    lines[i + 1].clone(),
                ))
            }
            Question::WordAfter => {
                let counts = occurrences(words.windows(PHRASE_WORDS));
                let once: Vec<&[&str]> = words
                    .windows(PHRASE_WORDS + 1)
                    .filter(|w| counts[&w[..PHRASE_WORDS]] == 1)
                    .collect();
                let w = pick(&once, rng)?;
                Some((
                    format!(
                        "Which word comes right after \"{}\" in the passage?",
                        w[..PHRASE_WORDS].join(" ")
                    ),
                    w[PHRASE_WORDS].to_string(),
                ))
            }
            Question::LineN => {
                let n = rng.between(1, lines.len());
                Some((
                    format!("Repeat line {n} of the passage exactly."),
                    lines[n - 1].clone(),
                ))
            }
            Question::FirstLine => Some((
                "What is the first line of the passage?".into(),
                lines[0].clone(),
            )),
            Question::LastLine => Some((
                "What is the last line of the passage?".into(),
                lines[lines.len() - 1].clone(),
            )),
            Question::CountWord => {
                let countable: Vec<String> = words
                    .iter()
                    .map(|w| normalize_word(w))
                    .filter(|w| w.chars().count() >= 3 && w.chars().all(char::is_alphabetic))
                    .collect();
                let word = pick(&countable, rng)?;
                Some((
                    format!(
                        "How many times does the word \"{word}\" occur in the passage? \
                         Count whole words, ignoring case and surrounding punctuation."
                    ),
                    count_word(&words, word).to_string(),
                ))
            }
        }
    }
}

/// How often each item occurs.
fn occurrences<K: std::hash::Hash + Eq>(items: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut counts = HashMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
}

fn pick<'t, T>(items: &'t [T], rng: &mut SplitMix64) -> Option<&'t T> {
    (!items.is_empty()).then(|| &items[rng.below(items.len() as u64) as usize])
}

/// A word as [`count_word`] compares it: lower case, without the
/// non-alphanumeric characters at its ends.
pub fn normalize_word(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// How many of `words` equal `word` once both are normalized.
pub fn count_word(words: &[&str], word: &str) -> usize {
    let word = normalize_word(word);
    words.iter().filter(|w| normalize_word(w) == word).count()
}

/// One generated conversation, as a JSON line: `messages` and where the
/// passage comes from.
#[derive(Debug, Clone, Serialize)]
pub struct SynthConversation {
    pub messages: Vec<Message>,
    /// `TEXT:FIRST-LAST`, 1-based non-blank line numbers.
    pub source: String,
    #[serde(skip)]
    pub questions: Vec<Question>,
}

/// Conversation `index` of the set of `seed`.
pub fn conversation(texts: &[Text], seed: u64, index: u64) -> SynthConversation {
    let mut rng = SplitMix64::new(xxhash_rust::xxh3::xxh3_64_with_seed(
        &index.to_le_bytes(),
        seed,
    ));
    let text = pick(texts, &mut rng).expect("load_texts gives at least one text");
    let (a, b) = passage_span(&text.lines, &mut rng);
    let lines = &text.lines[a..b];
    let mut kinds = Question::ALL.to_vec();
    let wanted = rng.between(1, 3);
    let mut qa = Vec::new();
    while qa.len() < wanted && !kinds.is_empty() {
        let kind = kinds.remove(rng.below(kinds.len() as u64) as usize);
        if let Some((q, answer)) = kind.ask(lines, &mut rng) {
            qa.push((kind, q, answer));
        }
    }
    let mut messages = Vec::new();
    if rng.below(4) == 0 {
        messages.push(Message {
            role: Role::System,
            content: SYSTEM_PROMPT.into(),
        });
    }
    for (i, (_, q, answer)) in qa.iter().enumerate() {
        let content = if i == 0 {
            format!("Read this passage:\n\n{}\n\n{q}", lines.join("\n"))
        } else {
            q.clone()
        };
        messages.push(Message {
            role: Role::User,
            content,
        });
        messages.push(Message {
            role: Role::Assistant,
            content: answer.clone(),
        });
    }
    SynthConversation {
        messages,
        source: format!("{}:{}-{}", text.name, a + 1, b),
        questions: qa.iter().map(|(kind, ..)| *kind).collect(),
    }
}

/// Lines `[a, b)` of `lines`: from a random line, forward (then backward at
/// the text's end) until the passage holds a drawn number of characters.
fn passage_span(lines: &[String], rng: &mut SplitMix64) -> (usize, usize) {
    let target = rng.between(PASSAGE_CHARS.0, PASSAGE_CHARS.1);
    let start = rng.below(lines.len() as u64) as usize;
    let (mut a, mut b, mut chars) = (start, start, 0);
    while b < lines.len() && (chars < target || b - a < MIN_LINES) {
        chars += lines[b].len() + 1;
        b += 1;
    }
    while a > 0 && (chars < target || b - a < MIN_LINES) {
        a -= 1;
        chars += lines[a].len() + 1;
    }
    (a, b)
}

/// What a synthesis made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SynthStats {
    pub out: PathBuf,
    pub seed: u64,
    pub texts: usize,
    pub conversations: u64,
    pub messages: u64,
    /// Questions asked, by kind.
    pub questions: BTreeMap<String, u64>,
    /// Bytes of the uncompressed JSONL.
    pub jsonl_bytes: u64,
}

/// The JSONL of `n` conversations of `seed`.
pub fn render(texts: &[Text], n: u64, seed: u64) -> (Vec<u8>, SynthStats) {
    let mut jsonl = Vec::new();
    let mut stats = SynthStats {
        seed,
        texts: texts.len(),
        ..Default::default()
    };
    for i in 0..n {
        let c = conversation(texts, seed, i);
        serde_json::to_writer(&mut jsonl, &c).expect("plain data serializes");
        jsonl.push(b'\n');
        stats.conversations += 1;
        stats.messages += c.messages.len() as u64;
        for q in &c.questions {
            *stats.questions.entry(q.name().to_string()).or_default() += 1;
        }
    }
    stats.jsonl_bytes = jsonl.len() as u64;
    (jsonl, stats)
}

/// The bytes of the file `out` for `jsonl`: as is for `.jsonl`, zstd
/// (level 3, one thread: the same bytes every time) for `.jsonl.zst`.
pub fn file_bytes(jsonl: Vec<u8>, out: &Path) -> Result<Vec<u8>, SynthError> {
    match Format::of(out) {
        Some(Format::Jsonl) => Ok(jsonl),
        Some(Format::JsonlZst) => {
            zstd::encode_all(jsonl.as_slice(), 3).map_err(|err| SynthError::Io {
                path: out.to_path_buf(),
                err,
            })
        }
        _ => Err(SynthError::OutputName {
            path: out.to_path_buf(),
        }),
    }
}

/// Writes `n` conversations of `seed` from `texts` to `out` (atomically).
/// Returns whether the file changed (an identical file is left alone) and
/// what was made.
pub fn synthesize(
    texts: &[Text],
    n: u64,
    seed: u64,
    out: &Path,
) -> Result<(bool, SynthStats), SynthError> {
    let (jsonl, mut stats) = render(texts, n, seed);
    stats.out = out.to_path_buf();
    let bytes = file_bytes(jsonl, out)?;
    if std::fs::read(out).is_ok_and(|old| old == bytes) {
        return Ok((false, stats));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| SynthError::Io {
            path: dir.to_path_buf(),
            err,
        })?;
    }
    prolong_mds::write_atomic(out, &bytes)?;
    Ok((true, stats))
}
