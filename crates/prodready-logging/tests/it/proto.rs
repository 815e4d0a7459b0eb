//! Our protobuf payload against an independent implementation (Python's protobuf runtime over Loki's
//! schema, cramjam's raw snappy), both ways, and the receiver's decoding of both formats.

use prodready_logging::loki::{Batch, Encoding, Entry, Labels, LokiClient, LokiClientOptions};
use prodready_test_support::LokiReceiver;

/// Midnight UTC a day ago: recent enough for the receiver's age limit, fixed within a test.
fn base() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    i64::try_from((now / 86_400 - 1) * 86_400).unwrap() * 1_000_000_000
}

fn sample() -> Batch {
    sample_at(1_764_000_000_000_000_000)
}

fn sample_at(base: i64) -> Batch {
    let mut batch = Batch::new();
    let api = Labels::new([("service", "api"), ("level", "info")]).unwrap();
    let quoted = Labels::new([("service", "we\"ird\\name"), ("level", "error")]).unwrap();
    batch.push(
        &api,
        Entry { timestamp_ns: base + 123_456_789, line: "hello ünïcode ✓".into(), metadata: vec![] },
    );
    batch.push(
        &api,
        Entry {
            timestamp_ns: base + 1_000_000_000,
            line: "{\"message\":\"with ids\"}".into(),
            metadata: vec![
                ("request_id".into(), "r-1".into()),
                ("trace_id".into(), "4bf92f3577b34da6a3ce929d0e0e4736".into()),
            ],
        },
    );
    batch.push(&quoted, Entry { timestamp_ns: base + 2_000_000_001, line: String::new(), metadata: vec![] });
    batch
}

fn as_json(batch: &Batch) -> serde_json::Value {
    let streams: Vec<serde_json::Value> = batch
        .streams()
        .map(|(labels, entries)| {
            serde_json::json!({
                "labels": labels.selector(),
                "entries": entries.iter().map(|e| serde_json::json!({
                    "ts": e.timestamp_ns,
                    "line": e.line,
                    "metadata": e.metadata.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "streams": streams })
}

#[test]
fn python_decodes_our_protobuf_body_to_the_same_streams() {
    let batch = sample();
    let decoded = crate::loki_proto_py("decode", &batch.encode_protobuf());
    let decoded: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(decoded, as_json(&batch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_decodes_a_python_encoded_body_like_python_does() {
    let receiver = LokiReceiver::start();
    let base = base();
    let expected = as_json(&sample_at(base));
    let body = crate::loki_proto_py("encode", expected.to_string().as_bytes());
    let status = reqwest::Client::new()
        .post(format!("{}/loki/api/v1/push", receiver.url()))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let mut entries = receiver.entries();
    entries.sort_by_key(|e| e.timestamp_ns);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].line, "hello ünïcode ✓");
    assert_eq!(entries[0].timestamp_ns, base + 123_456_789);
    assert_eq!(
        entries[1].metadata,
        [
            ("request_id".to_owned(), "r-1".to_owned()),
            ("trace_id".to_owned(), "4bf92f3577b34da6a3ce929d0e0e4736".to_owned())
        ]
    );
    assert_eq!(entries[2].labels["service"], "we\"ird\\name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_and_json_bodies_arrive_the_same() {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let receiver = LokiReceiver::start();
        let client =
            LokiClient::new(&LokiClientOptions { encoding, ..LokiClientOptions::new(receiver.url()) })
                .unwrap();
        let base = base();
        client.push_once(&sample_at(base)).await.unwrap();
        let mut entries = receiver.entries();
        entries.sort_by_key(|e| e.timestamp_ns);
        let got: Vec<(&str, i64, &str)> =
            entries.iter().map(|e| (e.labels["service"].as_str(), e.timestamp_ns, e.line.as_str())).collect();
        assert_eq!(
            got,
            [
                ("api", base + 123_456_789, "hello ünïcode ✓"),
                ("api", base + 1_000_000_000, "{\"message\":\"with ids\"}"),
                ("we\"ird\\name", base + 2_000_000_001, ""),
            ],
            "{encoding:?}"
        );
        assert_eq!(entries[1].metadata.len(), 2, "{encoding:?}");
    }
}

mod properties {
    use prodready_logging::loki::{Batch, Entry, Labels, proto};
    use proptest::prelude::*;

    fn labels() -> impl Strategy<Value = Labels> {
        proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,12}", 1..5)
            .prop_map(|m| Labels::new(m).unwrap())
    }

    proptest! {
        #[test]
        fn selectors_read_back_to_the_same_labels(labels in labels()) {
            prop_assert_eq!(Labels::parse(&labels.selector()).unwrap(), labels);
        }

        #[test]
        fn any_selector_text_parses_or_fails_cleanly(text in "\\PC{0,40}") {
            let _ = Labels::parse(&text);
        }

        #[test]
        fn protobuf_bodies_decode_to_what_was_pushed(
            streams in proptest::collection::vec((labels(), proptest::collection::vec(("\\PC{0,30}", 0i64..4_000_000_000_000_000_000), 1..5)), 1..4)
        ) {
            use prost::Message as _;
            let mut batch = Batch::new();
            for (labels, entries) in &streams {
                for (line, ts) in entries {
                    batch.push(labels, Entry { timestamp_ns: *ts, line: line.clone(), metadata: vec![("trace_id".into(), "t".into())] });
                }
            }
            let raw = snap::raw::Decoder::new().decompress_vec(&batch.encode_protobuf()).unwrap();
            let decoded = proto::PushRequest::decode(raw.as_slice()).unwrap();
            let lines: usize = decoded.streams.iter().map(|s| s.entries.len()).sum();
            prop_assert_eq!(lines, batch.lines());
            for (stream, (labels, entries)) in decoded.streams.iter().zip(batch.streams()) {
                prop_assert_eq!(&stream.labels, &labels.selector());
                for (got, want) in stream.entries.iter().zip(entries) {
                    let ts = got.timestamp.unwrap();
                    prop_assert_eq!(ts.seconds * 1_000_000_000 + i64::from(ts.nanos), want.timestamp_ns);
                    prop_assert_eq!(&got.line, &want.line);
                }
            }
        }
    }
}
