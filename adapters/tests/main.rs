//! The adapters' single integration-test binary.

mod autodesk;
mod golden;
mod rustore;
