//! Shared test support.
#![allow(dead_code)]

pub mod corpus;
pub mod deploy;
