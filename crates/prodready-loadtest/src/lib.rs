//! An open-model HTTP load generator with k6-compatible thresholds and summaries.
//!
//! Not built yet: scenarios, executors and summaries land with their issue (the `[loadtest]` section of
//! the binary's configuration is read by the binary). The crate will never read files or environment
//! variables by itself.
