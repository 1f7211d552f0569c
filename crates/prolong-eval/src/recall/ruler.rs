//! RULER's needle tasks (niah_multikey_2, niah_multikey_3, niah_multivalue) in
//! RULER's wording, as HELMET's Recall files hold them.
//!
//! Needles `One of the special magic {numbers|uuids} for {key} is: {value}.` go in
//! at depths drawn from RULER's 40 depths (0, 3, 5, …, 100 %), distinct within a
//! sample; the haystack is distractor needles with fresh keys and values, one a
//! line (multi-key), or prose sentences joined by spaces (multi-value).

use prolong_tokenizer::Tokenizer;

use super::fit::{FitError, Fitted, Haystack, fit, interleave};
use super::prose::Prose;
use super::task::Task;
use super::values::{ValueKind, Values};

/// RULER's depths: `round(linspace(0, 100, 40))` percent.
const DEPTH_STEPS: u64 = 40;

/// What a needle task is made of.
pub struct NeedleSpec {
    key: ValueKind,
    value: ValueKind,
    /// The value's noun in the prompt: "number" or "uuid".
    noun: &'static str,
    values_per_key: usize,
    /// Distractor needles one a line, or prose.
    in_prose: bool,
    /// The singular prompt with the plural noun, whatever the values per key
    /// ([`NeedleSpec::paper_wording`]).
    paper_wording: bool,
}

impl NeedleSpec {
    /// The wording HELMET's published numbers were made with: until HELMET's commit of
    /// 2025-02-06 ("fix niah mv, mq prompt") niah_multivalue got the singular template
    /// with RULER's plural noun, "A special magic numbers is hidden …".
    pub fn paper_wording(mut self) -> NeedleSpec {
        self.paper_wording = self.values_per_key > 1;
        self
    }

    /// HELMET's `type_needle_v`: the noun the prompt is written with.
    pub fn type_needle_v(&self) -> String {
        if self.values_per_key > 1 {
            format!("{}s", self.noun)
        } else {
            self.noun.to_owned()
        }
    }

    /// Whether the prompt is the plural template.
    pub fn plural_prompt(&self) -> bool {
        self.values_per_key > 1 && !self.paper_wording
    }
}

/// The needles of a RULER task; `None` for JSON KV.
pub fn needles_of(task: Task) -> Option<NeedleSpec> {
    let (key, value, noun, values_per_key, in_prose) = match task {
        Task::NiahMultikey2 => (ValueKind::Word, ValueKind::Number, "number", 1, false),
        Task::NiahMultikey3 => (ValueKind::Uuid, ValueKind::Uuid, "uuid", 1, false),
        Task::NiahMultivalue => (ValueKind::Word, ValueKind::Number, "number", 4, true),
        Task::JsonKv => return None,
    };
    Some(NeedleSpec {
        key,
        value,
        noun,
        values_per_key,
        in_prose,
        paper_wording: false,
    })
}

/// A needle task's sample before sizing.
pub struct NeedleSample {
    /// The key asked for.
    pub query: String,
    /// Its values, in the order drawn.
    pub answers: Vec<String>,
    /// Nominal depth (0..=1) of each answer's needle.
    pub depths: Vec<f64>,
    /// The context of the fitted prompt (needles and haystack).
    pub context: String,
    /// HELMET's `type_needle_v`: the noun the prompt is written with.
    pub type_needle_v: String,
    /// Whether the prompt is the plural template.
    pub plural: bool,
}

/// One sample of a needle task sized to `length` with `budget` tokens to generate;
/// keys and values are drawn from `values`, `prose` is the multi-value haystack.
pub fn make(
    spec: NeedleSpec,
    length: usize,
    budget: usize,
    mut values: Values,
    tok: &Tokenizer,
    prose: Option<&Prose>,
) -> Result<(NeedleSample, Fitted), FitError> {
    let ground_prose = match (spec.in_prose, prose) {
        (true, Some(p)) => Some(p),
        (true, None) => return Err(FitError::NoProse),
        (false, _) => None,
    };
    let query = values.fresh(spec.key)?;
    let answers = (0..spec.values_per_key)
        .map(|_| values.fresh(spec.value))
        .collect::<Result<Vec<_>, _>>()?;
    let mut steps: Vec<u64> = (0..DEPTH_STEPS).collect();
    values.rng().shuffle(&mut steps);
    let depths: Vec<f64> = steps[..answers.len()]
        .iter()
        .map(|&s| (s as f64 * 100.0 / (DEPTH_STEPS - 1) as f64).round() / 100.0)
        .collect();
    let needles = answers
        .iter()
        .zip(&depths)
        .map(|(v, &d)| (d, needle(spec.noun, &query, v)))
        .collect();
    let ground = match ground_prose {
        Some(prose) => Ground::Prose {
            start: values.rng().below(prose.len() as u64) as usize,
            prose,
        },
        None => Ground::Distractors { values },
    };
    let mut haystack = NeedleHaystack {
        query: query.clone(),
        needles,
        units: Vec::new(),
        ground,
        spec,
    };
    let fitted = fit(tok, &mut haystack, length, budget)?;
    Ok((
        NeedleSample {
            query,
            answers,
            depths,
            context: haystack.context(fitted.units),
            type_needle_v: haystack.spec.type_needle_v(),
            plural: haystack.spec.plural_prompt(),
        },
        fitted,
    ))
}

/// RULER's needle sentence.
fn needle(noun: &str, key: &str, value: &str) -> String {
    format!("One of the special magic {noun}s for {key} is: {value}.")
}

/// RULER's niah prompt: the plural template, or its singular form when one value is
/// asked for (RULER makes it with "Some" → "A", "are all"/"are" → "is" and the
/// noun without its "s"). `type_needle_v` is the noun as written: "numbers" in the
/// plural template, "number" (or, in the paper's wording, "numbers") in the singular.
pub fn helmet_prompt(type_needle_v: &str, plural: bool, query: &str, context: &str) -> String {
    let v = type_needle_v;
    if plural {
        format!(
            "Some special magic {v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {v} afterwards.\n\
             {context}\n\
             What are all the special magic {v} for {query} mentioned in the provided text?\n\
             The special magic {v} for {query} mentioned in the provided text are"
        )
    } else {
        format!(
            "A special magic {v} is hidden within the following text. Make sure to memorize it. I will quiz you about the {v} afterwards.\n\
             {context}\n\
             What is the special magic {v} for {query} mentioned in the provided text?\n\
             The special magic {v} for {query} mentioned in the provided text is"
        )
    }
}

/// The answer prefix that ends [`helmet_prompt`] (HELMET's system template).
pub fn answer_prefix(type_needle_v: &str, plural: bool, query: &str) -> String {
    let verb = if plural { "are" } else { "is" };
    format!("The special magic {type_needle_v} for {query} mentioned in the provided text {verb}")
}

enum Ground<'p> {
    /// Fresh keys and values of the task's kinds, drawn as the lines are needed.
    Distractors { values: Values },
    /// Sentences from `start` on, wrapping.
    Prose { prose: &'p Prose, start: usize },
}

impl NeedleHaystack<'_> {
    /// The context with the first `n` haystack units.
    fn context(&self, n: usize) -> String {
        let sep = if self.spec.in_prose { " " } else { "\n" };
        interleave(&self.units[..n], &self.needles).join(sep)
    }
}

struct NeedleHaystack<'p> {
    spec: NeedleSpec,
    query: String,
    /// (nominal depth, needle sentence).
    needles: Vec<(f64, String)>,
    /// Haystack units made so far (distractor lines or sentences).
    units: Vec<String>,
    ground: Ground<'p>,
}

impl Haystack for NeedleHaystack<'_> {
    fn unit_tokens(&mut self, tok: &Tokenizer, i: usize) -> Result<usize, FitError> {
        debug_assert_eq!(i, self.units.len());
        match &mut self.ground {
            Ground::Distractors { values } => {
                let line = needle(
                    self.spec.noun,
                    &values.fresh(self.spec.key)?,
                    &values.fresh(self.spec.value)?,
                );
                // Cut after the newline: the tokenizer cuts there too.
                let n = tok.encode(&format!("{line}\n"))?.len();
                self.units.push(line);
                Ok(n)
            }
            Ground::Prose { prose, start } => {
                self.units.push(prose.sentence(*start + i).to_owned());
                Ok(prose.tokens(tok, *start + i)?)
            }
        }
    }

    fn render(&self, n: usize) -> String {
        helmet_prompt(
            &self.spec.type_needle_v(),
            self.spec.plural_prompt(),
            &self.query,
            &self.context(n),
        )
    }
}
