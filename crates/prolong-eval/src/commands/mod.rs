pub mod export;
pub mod ppl;
pub mod recall;
