//! What every instance must satisfy (docs/eval-recall.md, "Checks a generator must
//! pass"); the CLI applies them to every instance before running a model.

use prolong_tokenizer::{TokenizeError, Tokenizer};

use super::fit::{fills, prompt_tokens};
use super::helmet::ModelText;
use super::instance::Instance;

/// An instance that breaks a check.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("answer {answer:?} occurs {count} times in the prompt (must be exactly once)")]
    AnswerCount { answer: String, count: usize },
    #[error("the instance has no answers")]
    NoAnswers,
    #[error("prompt tokens {prompt_tokens} + budget {budget} exceed length {length}")]
    OverLength {
        prompt_tokens: usize,
        budget: usize,
        length: usize,
    },
    #[error(
        "prompt tokens {prompt_tokens} + budget {budget} fill less than 90% of length {length}"
    )]
    Underfilled {
        prompt_tokens: usize,
        budget: usize,
        length: usize,
    },
    #[error(
        "the prompt has {actual} tokens with BOS (or the tokenizer's special tokens), not the {recorded} recorded"
    )]
    TokenCount { recorded: usize, actual: usize },
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
}

/// Every answer occurs exactly once in the prompt (so exactly once in the context,
/// and nowhere else).
pub fn check_answers(inst: &Instance) -> Result<(), CheckError> {
    if inst.answers.is_empty() {
        return Err(CheckError::NoAnswers);
    }
    for answer in &inst.answers {
        let count = inst.input.matches(answer.as_str()).count();
        if count != 1 {
            return Err(CheckError::AnswerCount {
                answer: answer.clone(),
                count,
            });
        }
    }
    Ok(())
}

/// Recorded prompt tokens + budget ≤ length and ≥ 0.9 length.
pub fn check_budget(inst: &Instance) -> Result<(), CheckError> {
    let (prompt_tokens, budget, length) = (inst.prompt_tokens, inst.max_new_tokens, inst.length);
    if prompt_tokens + budget > length {
        return Err(CheckError::OverLength {
            prompt_tokens,
            budget,
            length,
        });
    }
    if !fills(prompt_tokens + budget, length) {
        return Err(CheckError::Underfilled {
            prompt_tokens,
            budget,
            length,
        });
    }
    Ok(())
}

/// All checks, the recorded prompt tokens recounted with `tok` (BOS + the prompt).
pub fn check_instance(inst: &Instance, tok: &Tokenizer) -> Result<(), CheckError> {
    check_answers(inst)?;
    check_budget(inst)?;
    let actual = prompt_tokens(tok, &inst.input)?;
    if actual != inst.prompt_tokens {
        return Err(CheckError::TokenCount {
            recorded: inst.prompt_tokens,
            actual,
        });
    }
    Ok(())
}

/// A HELMET-protocol instance: the recorded prompt tokens recount with the
/// tokenizer's own special tokens; one `made_here` (not read from HELMET's files) and
/// not truncated has each answer once and fits L − budget (HELMET fills in another
/// tokenizer, so there is no lower bound).
pub fn check_helmet_instance(
    inst: &Instance,
    model: &ModelText,
    made_here: bool,
) -> Result<(), CheckError> {
    if made_here && inst.truncated_tokens == 0 {
        check_answers(inst)?;
        if inst.prompt_tokens + inst.max_new_tokens > inst.length {
            return Err(CheckError::OverLength {
                prompt_tokens: inst.prompt_tokens,
                budget: inst.max_new_tokens,
                length: inst.length,
            });
        }
    }
    let actual = model.count(&inst.input)?;
    if actual != inst.prompt_tokens {
        return Err(CheckError::TokenCount {
            recorded: inst.prompt_tokens,
            actual,
        });
    }
    Ok(())
}
