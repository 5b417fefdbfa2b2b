//! The verdict of a scenario test: expectations judged against what the run recorded, and the
//! reports (a table, JSON, JUnit XML).

pub mod decode;
pub mod expect;
pub mod grammar;
pub mod record;
