//! The verdict of a scenario test: expectations judged against what the run recorded, and the
//! reports (a table, JSON, JUnit XML).

pub mod accounting;
pub mod decode;
pub mod evaluate;
pub mod expect;
pub mod generator;
pub mod grammar;
pub mod proxy;
pub mod record;
pub mod report;
pub mod window;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
