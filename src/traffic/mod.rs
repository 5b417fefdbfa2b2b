//! Traffic: the open-loop load generator ([`plan`] in, [`report`] out) and the fault steps a
//! scenario test runs next to it.

pub mod decode;
pub mod faults;
pub mod generator;
pub mod plan;
pub mod report;
