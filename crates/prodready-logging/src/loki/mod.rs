//! Loki: the push payload (protobuf with raw snappy, or JSON), the HTTP client with its retry policy,
//! and the tracing layer that ships a service's own logs.

mod client;
mod labels;
mod layer;
pub mod proto;

use std::collections::BTreeMap;

pub use client::{Encoding, LokiClient, LokiClientOptions, PushError, RetryPolicy};
pub use labels::{Labels, check_label_name};
#[cfg(feature = "ship")]
pub(crate) use layer::truncate_line;
pub use layer::{LokiLayer, LokiLayerOptions, LokiStats, LokiWorker};

/// Loki's default limit on one line (`max_line_size`, 256 KB).
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Loki's default limit on labels per stream.
pub const MAX_LABELS: usize = 15;

/// One log line on its way to Loki.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unix time in nanoseconds.
    pub timestamp_ns: i64,
    pub line: String,
    /// Structured metadata (request and trace ids): high-cardinality values that are not labels.
    pub metadata: Vec<(String, String)>,
}

/// Entries grouped by stream, ready to push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    streams: BTreeMap<Labels, Vec<Entry>>,
    lines: usize,
    bytes: usize,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, labels: &Labels, entry: Entry) {
        self.lines += 1;
        self.bytes +=
            entry.line.len() + entry.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + 16;
        match self.streams.get_mut(labels) {
            Some(entries) => entries.push(entry),
            None => {
                self.bytes += labels.selector().len();
                self.streams.insert(labels.clone(), vec![entry]);
            }
        }
    }

    /// Lines in the batch.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Approximate uncompressed size, for batching by size.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The batch in two halves (each stream's entries split in order), or `None` for a single line.
    pub fn split(&self) -> Option<(Batch, Batch)> {
        if self.lines < 2 {
            return None;
        }
        let (mut first, mut second) = (Batch::new(), Batch::new());
        let mut seen = 0;
        for (labels, entries) in &self.streams {
            for entry in entries {
                let half = if seen < self.lines / 2 { &mut first } else { &mut second };
                half.push(labels, entry.clone());
                seen += 1;
            }
        }
        Some((first, second))
    }

    pub fn streams(&self) -> impl Iterator<Item = (&Labels, &[Entry])> {
        self.streams.iter().map(|(l, e)| (l, e.as_slice()))
    }

    /// The protobuf body, compressed with raw (block) snappy, as Loki expects.
    pub fn encode_protobuf(&self) -> Vec<u8> {
        use prost::Message as _;
        let request = proto::PushRequest {
            streams: self
                .streams
                .iter()
                .map(|(labels, entries)| proto::StreamAdapter {
                    labels: labels.selector(),
                    entries: entries
                        .iter()
                        .map(|e| proto::EntryAdapter {
                            timestamp: Some(proto::Timestamp {
                                seconds: e.timestamp_ns.div_euclid(1_000_000_000),
                                nanos: i32::try_from(e.timestamp_ns.rem_euclid(1_000_000_000)).unwrap_or(0),
                            }),
                            line: e.line.clone(),
                            structured_metadata: e
                                .metadata
                                .iter()
                                .map(|(name, value)| proto::LabelPairAdapter {
                                    name: name.clone(),
                                    value: value.clone(),
                                })
                                .collect(),
                        })
                        .collect(),
                    hash: 0,
                })
                .collect(),
        };
        let raw = request.encode_to_vec();
        // Encoding into a buffer sized by max_compress_len cannot fail.
        snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
    }

    /// The JSON body (`{"streams":[{"stream":{...},"values":[["ns","line",{meta}]]}]}`).
    pub fn encode_json(&self) -> Vec<u8> {
        let streams: Vec<serde_json::Value> = self
            .streams
            .iter()
            .map(|(labels, entries)| {
                let values: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        let mut value = vec![
                            serde_json::Value::String(e.timestamp_ns.to_string()),
                            serde_json::Value::String(e.line.clone()),
                        ];
                        if !e.metadata.is_empty() {
                            let meta: serde_json::Map<String, serde_json::Value> = e
                                .metadata
                                .iter()
                                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                                .collect();
                            value.push(serde_json::Value::Object(meta));
                        }
                        serde_json::Value::Array(value)
                    })
                    .collect();
                serde_json::json!({ "stream": labels.as_map(), "values": values })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap_or_default()
    }
}
