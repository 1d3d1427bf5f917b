//! The adapters' single integration-test binary.

mod golden;
mod rustore;
