pub mod inspect;
pub mod merge;
mod progress;
pub mod repos;
pub mod verify;
