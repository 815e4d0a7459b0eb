//! OpenTelemetry tracing with OTLP export, tower layers and log correlation.
//!
//! Not built yet: the provider set-up, layers and `trace ping` land with their issue (the `[tracing]`
//! section of the binary's configuration is read by the binary). The crate will never read files or
//! environment variables by itself.
