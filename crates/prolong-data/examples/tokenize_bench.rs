//! Tokens per second of the fast tokenizer against the tokenizers crate on
//! the fixture texts (Llama-3 tokenizer), after checking the ids are equal.
//!
//!   cargo run --release -p prolong-data --example tokenize_bench [-- TOKENIZER_JSON [TEXT...]]
//!
//! Defaults: fixtures/cache/tokenizer.json and the fixture texts
//! (gutenberg/*.txt, kjv.txt, enwiki.xml). The texts are cut into documents
//! of about 16 KiB at line ends, the same list for every encoder. Threads:
//! rayon's pool (RAYON_NUM_THREADS, default all cores). One-thread rates are
//! measured by the thread's CPU time (Linux), so they hold on a busy machine;
//! multi-thread rates by wall-clock time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prolong_data::tokenize::{Tokenizer, reference_tokenizer};
use rayon::prelude::*;

const DOC_BYTES: usize = 16 << 10;

fn docs_of(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + DOC_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
        docs.push(&text[start..end]);
        start = end;
    }
    docs
}

/// Seconds this thread has run on a CPU (Linux), so that one-thread rates
/// hold on a busy machine; `None` elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

/// Tokens/s of `f` (which returns the tokens it made). By wall-clock time:
/// the best of a few runs. By this thread's CPU time (`cpu`, where Linux
/// tells it): tokens over CPU seconds of runs adding up to a second or more,
/// as the counter moves in scheduler ticks.
fn rate_by(cpu: bool, mut f: impl FnMut() -> usize) -> f64 {
    if let (true, Some(c0)) = (cpu, thread_cpu_seconds()) {
        f(); // warm up
        let c0 = thread_cpu_seconds().unwrap_or(c0);
        let mut tokens = 0;
        loop {
            tokens += f();
            let c = thread_cpu_seconds().unwrap_or(c0) - c0;
            if c >= 1.0 {
                return tokens as f64 / c;
            }
        }
    }
    let mut best = f64::INFINITY;
    let mut tokens = 0;
    let started = Instant::now();
    for i in 0.. {
        let t = Instant::now();
        tokens = f();
        best = best.min(t.elapsed().as_secs_f64());
        if i >= 2 && started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    tokens as f64 / best
}

/// Wall-clock rate (for the multi-threaded runs).
fn rate(f: impl FnMut() -> usize) -> f64 {
    rate_by(false, f)
}

/// CPU-time rate of work done on this thread alone.
fn rate_1(f: impl FnMut() -> usize) -> f64 {
    rate_by(true, f)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cache");
    let json_path = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tokenizer.json"));
    let Ok(json) = std::fs::read(&json_path) else {
        println!(
            "tokenize bench: {} is absent (run scripts/fetch-fixtures.sh); nothing measured",
            json_path.display()
        );
        return;
    };
    let mut text_paths: Vec<PathBuf> = args.iter().skip(1).map(PathBuf::from).collect();
    if text_paths.is_empty() {
        for name in ["alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt"] {
            text_paths.push(root.join("gutenberg").join(name));
        }
        text_paths.push(root.join("kjv.txt"));
        text_paths.push(root.join("enwiki.xml"));
    }
    let texts: Vec<(String, String)> = text_paths
        .iter()
        .filter_map(|p| {
            let b = std::fs::read(p).ok()?;
            Some((
                p.file_name()?.to_string_lossy().into_owned(),
                String::from_utf8_lossy(&b).into_owned(),
            ))
        })
        .collect();
    if texts.is_empty() {
        println!("tokenize bench: no texts found; nothing measured");
        return;
    }

    let t = Instant::now();
    let fast = Tokenizer::from_bytes(&json).expect("tokenizer.json");
    let load_fast = t.elapsed();
    let t = Instant::now();
    let reference = reference_tokenizer(&json).expect("tokenizer.json");
    let load_ref = t.elapsed();
    assert!(fast.is_fast(), "no fast path: {:?}", fast.fallback_reason());
    let threads = rayon::current_num_threads();
    println!(
        "tokenizer {} (load: fast {:.2}s, tokenizers crate {:.2}s); {threads} threads",
        json_path.display(),
        load_fast.as_secs_f64(),
        load_ref.as_secs_f64()
    );

    let all: Vec<&str> = texts.iter().flat_map(|(_, t)| docs_of(t)).collect();
    let bytes: usize = all.iter().map(|d| d.len()).sum();
    // Identical ids first.
    let ours = fast.encode_batch(&all).unwrap();
    let theirs = reference.encode_batch_fast(all.clone(), false).unwrap();
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.as_slice(), b.get_ids(), "ids differ in document {i}");
    }
    let tokens: usize = ours.iter().map(Vec::len).sum();
    println!(
        "{} texts, {} documents, {bytes} bytes, {tokens} tokens; ids identical",
        texts.len(),
        all.len()
    );

    let fast_1 = rate_1(|| {
        let mut enc = fast.encoder();
        let mut out = Vec::new();
        let mut n = 0;
        for d in &all {
            out.clear();
            enc.encode_into(d, &mut out).unwrap();
            n += out.len();
        }
        n
    });
    let fast_n = rate(|| fast.encode_batch(&all).unwrap().iter().map(Vec::len).sum());
    let joined: String = texts
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let long_n = rate(|| fast.encode_long(&joined).unwrap().len());
    let ref_1 = rate(|| {
        all.iter()
            .map(|d| reference.encode_fast(*d, false).unwrap().len())
            .sum()
    });
    let ref_n = rate(|| {
        let enc = reference.encode_batch_fast(all.clone(), false).unwrap();
        enc.par_iter().map(|e| e.len()).sum()
    });

    let m = |r: f64| r / 1e6;
    println!(
        "{:<44} {:>10}",
        "encoder (1 thread: by CPU time; more: wall)", "M tokens/s"
    );
    println!(
        "{:<44} {:>10.2}",
        "tokenizers crate encode_fast, 1 thread",
        m(ref_1)
    );
    println!(
        "{:<44} {:>10.2}",
        format!("tokenizers crate encode_batch_fast, {threads} threads"),
        m(ref_n)
    );
    println!("{:<44} {:>10.2}", "fast encode, 1 thread", m(fast_1));
    println!(
        "{:<44} {:>10.2}",
        format!("fast encode_batch, {threads} threads"),
        m(fast_n)
    );
    println!(
        "{:<44} {:>10.2}",
        format!("fast encode_long (one text), {threads} threads"),
        m(long_n)
    );
    println!(
        "ratio fast/tokenizers crate: 1 thread {:.2}x, {threads} threads {:.2}x",
        fast_1 / ref_1,
        fast_n / ref_n
    );
    end_to_end(&json_path, &fast, &all, tokens, ref_n, threads);
    if let Some((_, kjv)) = texts.iter().find(|(name, _)| name == "kjv.txt") {
        kjv_whole_vs_books(&fast, kjv);
    }
    no_white_space(&fast, 50 << 20);
    for (name, text) in &texts {
        let ids = fast.encode(text).unwrap().len();
        let r = rate_1(|| fast.encoder().encode(text).unwrap().len());
        println!(
            "  {name:<16} {:>9} bytes {:>8} tokens  fast 1 thread {:>6.2} M tokens/s",
            text.len(),
            ids,
            m(r)
        );
    }
}

/// The whole tokenize stage (read JSONL, encode, write MDS) on the same
/// documents, against the tokenizers crate (measured above) and tiktoken
/// (Python, when it can be imported) on the same threads.
fn end_to_end(
    json_path: &Path,
    fast: &Tokenizer,
    all: &[&str],
    tokens: usize,
    ref_n: f64,
    threads: usize,
) {
    use prolong_data::task::TaskSpec;
    use prolong_data::tokenize::stage::{TokenizeOptions, tokenize_task};
    use std::io::Write;

    let tmp = std::env::temp_dir().join(format!("tokenize-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let docs = tmp.join("docs.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&docs).unwrap());
    for d in all {
        serde_json::to_writer(&mut f, &serde_json::json!({ "text": d })).unwrap();
        f.write_all(b"\n").unwrap();
    }
    drop(f);
    let files = vec![docs.clone()];
    let e2e = rate(|| {
        let out = tmp.join("out");
        let _ = std::fs::remove_dir_all(&out);
        let stats = tokenize_task(
            fast,
            &files,
            TaskSpec::new(0, 1).unwrap().at(&out),
            &TokenizeOptions::default(),
            &mut |_| {},
        )
        .unwrap()
        .unwrap();
        stats.tokens as usize
    });
    println!();
    println!("| tokenize, {threads} threads | M tokens/s | ratio of the stage |");
    println!("|---|---|---|");
    println!(
        "| prolong-data tokenize stage (JSONL → MDS) | {:.2} | 1.00x |",
        e2e / 1e6
    );
    println!(
        "| tokenizers crate encode_batch_fast (encode only) | {:.2} | {:.2}x |",
        ref_n / 1e6,
        e2e / ref_n
    );
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench_tiktoken.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(json_path)
        .arg(&docs)
        .arg(threads.to_string())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let ours: u64 = fast
                .encode_batch(all)
                .unwrap()
                .iter()
                .flatten()
                .map(|&i| i as u64)
                .sum();
            let same =
                r["tokens"].as_u64() == Some(tokens as u64) && r["id_sum"].as_u64() == Some(ours);
            let tt = r["tokens_per_s"].as_f64().unwrap();
            println!(
                "| tiktoken encode_ordinary_batch (encode only{}) | {:.2} | {:.2}x |",
                if same { ", same ids" } else { ", IDS DIFFER" },
                tt / 1e6,
                e2e / tt
            );
        }
        _ => println!("| tiktoken | skipped: {python} cannot import tiktoken | |"),
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A million-token book as one document (split at pre-tokenizer boundaries
/// over the threads) against the same text as its 66 books (one per thread).
fn kjv_whole_vs_books(fast: &Tokenizer, kjv: &str) {
    let mut books: Vec<&str> = Vec::new();
    let (mut start, mut current) = (0, "");
    let mut pos = 0;
    for line in kjv.split_inclusive('\n') {
        // Chapter headers are "Book N" lines; a new book starts where the name changes.
        let header = line.trim_end();
        if let Some((name, n)) = header.rsplit_once(' ')
            && !header.starts_with(' ')
            && n.chars().all(|c| c.is_ascii_digit())
            && !n.is_empty()
            && name != current
        {
            if !kjv[start..pos].trim().is_empty() {
                books.push(&kjv[start..pos]);
            }
            start = pos;
            current = name;
        }
        pos += line.len();
    }
    books.push(&kjv[start..]);
    let whole = rate(|| fast.encode_long(kjv).unwrap().len());
    let parts = rate(|| {
        fast.encode_batch(&books)
            .unwrap()
            .iter()
            .map(Vec::len)
            .sum()
    });
    println!();
    println!(
        "| KJV ({} books) | M tokens/s | time ratio whole/books |",
        books.len()
    );
    println!("|---|---|---|");
    println!(
        "| as one document (encode_long) | {:.2} | {:.2} |",
        whole / 1e6,
        parts / whole
    );
    println!(
        "| as its books (encode_batch) | {:.2} | 1.00 |",
        parts / 1e6
    );
}

/// Peak resident memory of this process so far (VmHWM, bytes; Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb << 10)
}

/// A document of `bytes` bytes of letters without white space (one
/// pre-token of the whole document): time and peak memory of encoding it,
/// the peak counted from a reset of Linux's high-water mark just before.
fn no_white_space(fast: &Tokenizer, bytes: usize) {
    const LETTERS: [char; 8] = ['a', 'e', 's', 't', 'n', 'Q', 'é', 'ж'];
    let mut rng = prolong_rng::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let mut text = String::with_capacity(bytes + 4);
    while text.len() < bytes {
        text.push(LETTERS[rng.below(8) as usize]);
    }
    // "5" resets VmHWM to the current RSS (Linux >= 4.0); elsewhere the
    // peak below includes what ran before.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss().unwrap_or(0);
    let t = Instant::now();
    let ids = fast.encode_long(&text).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let peak = peak_rss().unwrap_or(0).saturating_sub(before);
    println!();
    println!(
        "| {} MB without white space (one pre-token) | {:.2} s | peak memory +{} MB | {} tokens |",
        bytes >> 20,
        secs,
        peak >> 20,
        ids.len()
    );
}
