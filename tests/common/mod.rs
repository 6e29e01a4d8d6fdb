//! Test support shared by the native test targets.

pub mod postgrest;
