//! Adapter integration tests.
