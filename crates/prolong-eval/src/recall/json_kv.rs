//! JSON KV retrieval (lost-in-the-middle's kv_retrieval as HELMET runs it): an
//! object of UUID → UUID records, two of them shown as demonstrations, one asked for.
//!
//! The gold record goes in at a swept depth; the two demonstration records are
//! records of the object at random depths; the filler records are the haystack.

use prolong_tokenizer::Tokenizer;
use prolong_train::data::rng::SplitMix64;

use super::fit::{FitError, Fitted, Haystack, fit, interleave};
use super::helmet::json_record_line;
use super::values::{ValueKind, Values};

/// The gold record's depths, swept over samples (sample `s` gets `DEPTHS[s % 6]`).
pub const DEPTHS: [f64; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

/// A JSON KV sample before sizing.
pub struct KvSample {
    pub gold_key: String,
    pub gold_value: String,
    pub depth: f64,
}

/// One sample sized to `length` with `budget` tokens to generate.
pub fn make(
    sample: usize,
    length: usize,
    budget: usize,
    rng: SplitMix64,
    tok: &Tokenizer,
) -> Result<(KvSample, Fitted), FitError> {
    let mut values = Values::new(rng);
    let mut record = || -> Result<(String, String), FitError> {
        Ok((
            values.fresh(ValueKind::Uuid)?,
            values.fresh(ValueKind::Uuid)?,
        ))
    };
    let gold = record()?;
    let demos = [record()?, record()?];
    let depth = DEPTHS[sample % DEPTHS.len()];
    let demo_depths = [
        values.rng().below(101) as f64 / 100.0,
        values.rng().below(101) as f64 / 100.0,
    ];
    let mut special = vec![(depth, render_record(&gold))];
    special.extend(
        demo_depths
            .iter()
            .zip(&demos)
            .map(|(&d, r)| (d, render_record(r))),
    );
    let mut haystack = KvHaystack {
        values,
        gold_key: gold.0.clone(),
        demos,
        special,
        fillers: Vec::new(),
    };
    let fitted = fit(tok, &mut haystack, length, budget)?;
    Ok((
        KvSample {
            gold_key: gold.0,
            gold_value: gold.1,
            depth,
        },
        fitted,
    ))
}

/// A HELMET JSON KV sample: `k` records (the gold one at the sample's swept depth, two
/// demonstration records at random depths, the rest fillers) as HELMET's files lay
/// them out: `JSON data:` and the object as `json.dumps(…, indent=4)` writes it. The
/// demonstrations are shown below it with bare keys, as is the key asked for.
pub struct HelmetKv {
    pub sample: KvSample,
    pub context: String,
    pub demos: Vec<(String, String)>,
    /// Filler records (k − 3).
    pub fillers: usize,
}

/// HELMET JSON KV sample `sample` with `k` ≥ 3 records.
pub fn make_helmet(sample: usize, k: usize, mut values: Values) -> Result<HelmetKv, FitError> {
    let mut record = || -> Result<(String, String), FitError> {
        Ok((
            values.fresh(ValueKind::Uuid)?,
            values.fresh(ValueKind::Uuid)?,
        ))
    };
    let gold = record()?;
    let demos = vec![record()?, record()?];
    let fillers = (0..k.saturating_sub(3))
        .map(|_| record().map(|r| json_record_line(&r.0, &r.1)))
        .collect::<Result<Vec<_>, _>>()?;
    let depth = DEPTHS[sample % DEPTHS.len()];
    let demo_depths = [
        values.rng().below(101) as f64 / 100.0,
        values.rng().below(101) as f64 / 100.0,
    ];
    let mut special = vec![(depth, json_record_line(&gold.0, &gold.1))];
    special.extend(
        demo_depths
            .iter()
            .zip(&demos)
            .map(|(&d, (k, v))| (d, json_record_line(k, v))),
    );
    let lines = interleave(&fillers, &special);
    Ok(HelmetKv {
        context: format!("JSON data:\n{{\n{}\n}}", lines.join(",\n")),
        sample: KvSample {
            gold_key: gold.0,
            gold_value: gold.1,
            depth,
        },
        demos,
        fillers: fillers.len(),
    })
}

/// `"key": "value"`.
fn render_record((k, v): &(String, String)) -> String {
    format!("\"{k}\": \"{v}\"")
}

/// The prompt (docs/eval-recall.md, "JSON KV").
pub fn prompt(records: &[&str], demos: &[(String, String)], gold_key: &str) -> String {
    let mut s = format!(
        "JSON data:\n{{{}}}\n\nExtract the value corresponding to the specified key in the JSON object below.\n\n",
        records.join(",\n ")
    );
    for (k, v) in demos {
        s.push_str(&format!("Key: \"{k}\"\nCorresponding value: {v}\n\n"));
    }
    s.push_str(&format!("Key: \"{gold_key}\"\nCorresponding value:"));
    s
}

struct KvHaystack {
    values: Values,
    gold_key: String,
    demos: [(String, String); 2],
    /// (depth, rendered record) of the gold and demonstration records.
    special: Vec<(f64, String)>,
    fillers: Vec<String>,
}

impl Haystack for KvHaystack {
    fn unit_tokens(&mut self, tok: &Tokenizer, i: usize) -> Result<usize, FitError> {
        debug_assert_eq!(i, self.fillers.len());
        let record = render_record(&(
            self.values.fresh(ValueKind::Uuid)?,
            self.values.fresh(ValueKind::Uuid)?,
        ));
        // ` "k": "v",\n`: the tokenizer cuts after the newline, as the unit is cut.
        let n = tok.encode(&format!(" {record},\n"))?.len();
        self.fillers.push(record);
        Ok(n)
    }

    fn render(&self, n: usize) -> String {
        let records = interleave(&self.fillers[..n], &self.special);
        prompt(&records, &self.demos, &self.gold_key)
    }
}
