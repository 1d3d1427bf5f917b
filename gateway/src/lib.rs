//! The storehook gateway.
