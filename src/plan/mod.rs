//! Planning: turning what a spec asks for into concrete targets, within the blast-radius caps,
//! with random choices that a recorded seed makes repeatable.

pub mod seeded;
pub mod select;
pub mod zones;

pub use select::{Caps, Selection, SelectionError, select};
