pub mod inspect;
pub mod merge;
mod progress;
pub mod verify;
