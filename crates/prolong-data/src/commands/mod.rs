pub mod inspect;
pub mod merge;
pub mod pack;
mod progress;
pub mod repos;
pub mod tokenize;
pub mod verify;
