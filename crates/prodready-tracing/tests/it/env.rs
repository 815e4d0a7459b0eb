//! More `OTEL_*` variables as data, each case showing the options and the URL spans go to: which exporter,
//! endpoint precedence and the OTLP/HTTP base-URL rule, headers and timeouts, every sampler, the resource,
//! and the one clear error for each bad value.

use std::collections::HashMap;

use expect_test::{Expect, expect};
use prodready_tracing::{Exporter, Options, Sampler};

/// `vars` applied over `base` by `from_env`: what `show` renders of the options, or the error.
fn apply(base: Options, vars: &[(&str, &str)], show: impl Fn(&Options) -> String) -> String {
    let vars: HashMap<&str, &str> = vars.iter().copied().collect();
    match base.from_env(|name| vars.get(name).map(|v| (*v).to_owned())) {
        Ok(o) => show(&o),
        Err(e) => format!("error: {e}"),
    }
}

/// `vars` over `base`: the exporter, the URL spans go to, the sampler and the timeout, or the error.
fn check_over(base: Options, vars: &[(&str, &str)], expected: Expect) {
    let out = apply(base, vars, |o| {
        format!(
            "{:?}\nurl={} sampler={:?} timeout={:?}",
            o.exporter,
            o.export_url().unwrap_or_default(),
            o.sampler,
            o.export_timeout
        )
    });
    expected.assert_eq(&out);
}

fn check(vars: &[(&str, &str)], expected: Expect) {
    check_over(Options::new("svc"), vars, expected);
}

fn zipkin() -> Options {
    let mut options = Options::new("svc");
    options.exporter = Exporter::Zipkin { endpoint: "http://zipkin:9411/api/v2/spans".to_owned() };
    options
}

#[test]
fn the_exporter_variable_picks_otlp_zipkin_or_none() {
    check_over(
        zipkin(),
        &[("OTEL_TRACES_EXPORTER", "otlp")],
        expect![[r#"
            Otlp { endpoint: "http://localhost:4318", protocol: HttpProtobuf, headers: [] }
            url=http://localhost:4318/v1/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    // Unset, the caller's choice stands; OTLP variables do not apply to Zipkin.
    check_over(
        zipkin(),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")],
        expect![[r#"
            Zipkin { endpoint: "http://zipkin:9411/api/v2/spans" }
            url=http://zipkin:9411/api/v2/spans sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "3000")],
        expect![[r#"
            Zipkin { endpoint: "http://localhost:9411/api/v2/spans" }
            url=http://localhost:9411/api/v2/spans sampler=ParentBasedRatio(1.0) timeout=3s"#]],
    );
    check(
        &[("OTEL_TRACES_EXPORTER", "none"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
        expect![[r#"
            None
            url= sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    // An empty value is unset, as the specification says.
    check(
        &[("OTEL_TRACES_EXPORTER", " "), ("OTEL_SERVICE_NAME", "")],
        expect![[r#"
            Otlp { endpoint: "http://localhost:4318", protocol: HttpProtobuf, headers: [] }
            url=http://localhost:4318/v1/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_TRACES_EXPORTER", "otlp,console")],
        expect!["error: OTEL_TRACES_EXPORTER: `otlp,console` is not supported (otlp, zipkin or none)"],
    );
    check(
        &[("OTEL_SDK_DISABLED", "TRUE"), ("OTEL_TRACES_EXPORTER", "zipkin")],
        expect![[r#"
            None
            url= sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_SDK_DISABLED", "false")],
        expect![[r#"
            Otlp { endpoint: "http://localhost:4318", protocol: HttpProtobuf, headers: [] }
            url=http://localhost:4318/v1/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
}

#[test]
fn otlp_endpoints_follow_the_specification() {
    // The base variable: signal paths are built below it, also when it has a path of its own.
    check(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
        expect![[r#"
            Otlp { endpoint: "http://c:4318", protocol: HttpProtobuf, headers: [] }
            url=http://c:4318/v1/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/mycollector/")],
        expect![[r#"
            Otlp { endpoint: "http://c:4318/mycollector/v1/traces", protocol: HttpProtobuf, headers: [] }
            url=http://c:4318/mycollector/v1/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")],
        expect![[r#"
            Otlp { endpoint: "http://c:4318/v1/traces", protocol: HttpProtobuf, headers: [] }
            url=http://c:4318/v1/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    // The per-signal variable is used as is, even without a path, and wins over the base.
    check(
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c:443")],
        expect![[r#"
            Otlp { endpoint: "https://c:443/", protocol: HttpProtobuf, headers: [] }
            url=https://c:443/ sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom/traces"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
        ],
        expect![[r#"
            Otlp { endpoint: "http://b:4318/custom/traces", protocol: HttpProtobuf, headers: [] }
            url=http://b:4318/custom/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    // gRPC takes the endpoint as is; the per-signal protocol wins; only the default port moves.
    check(
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")],
        expect![[r#"
            Otlp { endpoint: "http://c:4317", protocol: Grpc, headers: [] }
            url=http://c:4317 sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
        expect![[r#"
            Otlp { endpoint: "http://localhost:4317", protocol: Grpc, headers: [] }
            url=http://localhost:4317 sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    let mut custom = Options::new("svc");
    custom.exporter = Exporter::Otlp {
        endpoint: "http://mine:4318".to_owned(),
        protocol: prodready_tracing::Protocol::HttpProtobuf,
        headers: Vec::new(),
    };
    check_over(
        custom,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
        expect![[r#"
            Otlp { endpoint: "http://mine:4318", protocol: Grpc, headers: [] }
            url=http://mine:4318 sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
}

#[test]
fn headers_and_timeouts_prefer_the_traces_variables() {
    check(
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", " api-key = a%2Cb%3Dc , x-tenant=t1,"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "500"),
        ],
        expect![[r#"
            Otlp { endpoint: "http://localhost:4318", protocol: HttpProtobuf, headers: [("api-key", "a,b=c"), ("x-tenant", "t1")] }
            url=http://localhost:4318/v1/traces sampler=ParentBasedRatio(1.0) timeout=500ms"#]],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_HEADERS", "authorization")],
        expect!["error: OTEL_EXPORTER_OTLP_HEADERS: write key1=value1,key2=value2 (the value is not shown)"],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")],
        expect!["error: OTEL_EXPORTER_OTLP_TIMEOUT: `10s` is not a number of milliseconds"],
    );
    // A bad value is reported under the variable it was read from: the per-signal one when it is set.
    check(
        &[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")],
        expect!["error: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: `10s` is not a number of milliseconds"],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "authorization"), ("OTEL_EXPORTER_OTLP_HEADERS", "a=b")],
        expect![
            "error: OTEL_EXPORTER_OTLP_TRACES_HEADERS: write key1=value1,key2=value2 (the value is not shown)"
        ],
    );
    check(
        &[("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "-1")],
        expect!["error: OTEL_EXPORTER_ZIPKIN_TIMEOUT: `-1` is not a number of milliseconds"],
    );
}

/// Each sampler name with its argument, one line per case.
fn samplers(cases: &[(&str, Option<&str>)]) -> String {
    let mut out = String::new();
    for (name, arg) in cases {
        let mut vars = HashMap::from([("OTEL_TRACES_SAMPLER", *name)]);
        if let Some(arg) = arg {
            vars.insert("OTEL_TRACES_SAMPLER_ARG", arg);
        }
        let result = Options::new("svc").from_env(|n| vars.get(n).map(|v| (*v).to_owned()));
        let shown = match result {
            Ok(o) => format!("{:?}", o.sampler),
            Err(e) => format!("error: {e}"),
        };
        out += &format!("{name} {} => {shown}\n", arg.unwrap_or("-"));
    }
    out
}

#[test]
fn every_sampler_and_its_argument() {
    expect![[r#"
        always_on - => AlwaysOn
        always_off - => AlwaysOff
        traceidratio - => Ratio(1.0)
        traceidratio 0.5 => Ratio(0.5)
        parentbased_always_on - => ParentBasedRatio(1.0)
        parentbased_always_off - => ParentBasedRatio(0.0)
        parentbased_traceidratio 0.1 => ParentBasedRatio(0.1)
        parentbased_traceidratio 0 => ParentBasedRatio(0.0)
        parentbased_traceidratio 1 => ParentBasedRatio(1.0)
        parentbased_traceidratio 1.01 => error: the sampling ratio must be from 0 to 1, not 1.01
        parentbased_traceidratio -0.1 => error: the sampling ratio must be from 0 to 1, not -0.1
        traceidratio 2 => error: the sampling ratio must be from 0 to 1, not 2
        traceidratio half => error: OTEL_TRACES_SAMPLER_ARG: `half` is not a number from 0 to 1
        parentbased_jaeger_remote - => error: OTEL_TRACES_SAMPLER: `parentbased_jaeger_remote` is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)
    "#]]
    .assert_eq(&samplers(&[
        ("always_on", None),
        ("always_off", None),
        ("traceidratio", None),
        ("traceidratio", Some("0.5")),
        ("parentbased_always_on", None),
        ("parentbased_always_off", None),
        ("parentbased_traceidratio", Some("0.1")),
        ("parentbased_traceidratio", Some("0")),
        ("parentbased_traceidratio", Some("1")),
        ("parentbased_traceidratio", Some("1.01")),
        ("parentbased_traceidratio", Some("-0.1")),
        ("traceidratio", Some("2")),
        ("traceidratio", Some("half")),
        ("parentbased_jaeger_remote", None),
    ]));
    // The argument alone changes nothing; a ratio set in code is checked the same way.
    check(
        &[("OTEL_TRACES_SAMPLER_ARG", "0.5")],
        expect![[r#"
            Otlp { endpoint: "http://localhost:4318", protocol: HttpProtobuf, headers: [] }
            url=http://localhost:4318/v1/traces sampler=ParentBasedRatio(1.0) timeout=10s"#]],
    );
    let mut options = Options::new("svc");
    options.sampler = Sampler::Ratio(-1.0);
    assert_eq!(options.validate().unwrap_err().to_string(), "the sampling ratio must be from 0 to 1, not -1");
}

#[test]
fn resource_attributes_are_percent_decoded_and_checked() {
    let vars = [
        ("OTEL_RESOURCE_ATTRIBUTES", "team=pay%2Cments, region = eu%3Dwest ,service.version=2.0,,"),
        ("OTEL_SERVICE_NAME", "checkout"),
    ];
    let map: HashMap<&str, &str> = vars.into_iter().collect();
    let options = Options::new("svc").from_env(|n| map.get(n).map(|v| (*v).to_owned())).unwrap();
    expect![[r#"checkout Some("2.0") [("team", "pay,ments"), ("region", "eu=west")]"#]]
        .assert_eq(&format!("{} {:?} {:?}", options.service_name, options.service_version, options.resource));
    check(
        &[("OTEL_RESOURCE_ATTRIBUTES", "team")],
        expect!["error: OTEL_RESOURCE_ATTRIBUTES: `team` is not key=value (write key1=value1,key2=value2)"],
    );
}

#[test]
fn a_bad_endpoint_gets_one_clear_error() {
    check(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "notaurl")],
        expect![
            "error: the endpoint `notaurl` needs an http:// or https:// scheme and a host (write e.g. http://127.0.0.1:4318)"
        ],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c:21/traces")],
        expect![
            "error: the endpoint `ftp://c:21/traces` needs an http:// or https:// scheme and a host (write e.g. http://127.0.0.1:4318)"
        ],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://exa mple:4318")],
        expect![
            "error: the endpoint `http://exa mple:4318` is not a URL: invalid uri character (write e.g. http://127.0.0.1:4318)"
        ],
    );
    // The example is Zipkin's own spans URL, not an OTLP port.
    check(
        &[("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "zipkin:9411/api/v2/spans")],
        expect![
            "error: the endpoint `zipkin:9411/api/v2/spans` is not a URL: invalid format (write e.g. http://127.0.0.1:9411/api/v2/spans)"
        ],
    );
    check(
        &[("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "ftp://zipkin/api/v2/spans")],
        expect![
            "error: the endpoint `ftp://zipkin/api/v2/spans` needs an http:// or https:// scheme and a host (write e.g. http://127.0.0.1:9411/api/v2/spans)"
        ],
    );
}

/// The protocol's error names the variable it was read from, the per-signal one first.
#[test]
fn a_bad_protocol_is_reported_under_the_variable_that_holds_it() {
    check(
        &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
        expect![
            "error: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: `http/json` is not supported (http/protobuf or grpc)"
        ],
    );
    check(
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
        expect!["error: OTEL_EXPORTER_OTLP_PROTOCOL: `http/json` is not supported (http/protobuf or grpc)"],
    );
}

/// Compression and the TLS files, the per-signal variables first, and their errors.
#[test]
fn compression_and_tls_files_follow_the_variables() {
    let show = |vars: &[(&str, &str)]| {
        apply(Options::new("svc"), vars, |o| format!("{:?} {:?}", o.compression, o.tls))
    };
    expect![[r#"None Tls { certificate: None, client_certificate: None, client_key: None }"#]]
        .assert_eq(&show(&[]));
    expect![[r#"Gzip Tls { certificate: Some("/etc/otel/ca.pem"), client_certificate: Some("/etc/otel/client.pem"), client_key: Some("/etc/otel/client.key") }"#]]
        .assert_eq(&show(&[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/otel/general-ca.pem"),
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/etc/otel/ca.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/otel/client.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/otel/client.key"),
        ]));
    expect!["error: OTEL_EXPORTER_OTLP_COMPRESSION: `zstd` is not supported (gzip or none)"]
        .assert_eq(&show(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")]));
    expect!["error: a client certificate needs its key, and a key its certificate (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE with OTEL_EXPORTER_OTLP_CLIENT_KEY)"]
        .assert_eq(&show(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/otel/client.pem")]));
    expect!["error: OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: `br` is not supported (gzip or none)"]
        .assert_eq(&show(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "br")]));
    // The OTLP TLS files are for OTLP over http/protobuf: set for other signals, they leave gRPC and
    // Zipkin alone.
    expect![[r#"None Tls { certificate: None, client_certificate: None, client_key: None }"#]].assert_eq(
        &show(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem")]),
    );
    expect![[r#"None Tls { certificate: None, client_certificate: None, client_key: None }"#]].assert_eq(
        &show(&[("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem")]),
    );
    // Given in code with gRPC, they are refused: the gRPC exporter here has no TLS.
    let mut grpc = Options::new("svc");
    grpc.exporter = Exporter::Otlp {
        endpoint: "https://c:4317".to_owned(),
        protocol: prodready_tracing::Protocol::Grpc,
        headers: Vec::new(),
    };
    grpc.tls.certificate = Some("/ca.pem".into());
    expect!["OTEL_EXPORTER_OTLP_CERTIFICATE and the client certificate and key are supported over http/protobuf, not gRPC (use http/protobuf, port 4318, or a collector without TLS)"]
        .assert_eq(&grpc.validate().unwrap_err().to_string());
}

/// The batch processor's and the span limits' variables, and their errors.
#[test]
fn batch_and_limit_variables_are_read_here() {
    let show = |vars: &[(&str, &str)]| {
        apply(Options::new("svc"), vars, |o| format!("{:?}\n{:?}", o.batch, o.limits))
    };
    expect![[r#"
        Batch { max_queue_size: 2048, schedule_delay: 5s, max_export_batch_size: 512 }
        Limits { attributes_per_span: 128, events_per_span: 128, links_per_span: 128, attributes_per_event: 128, attributes_per_link: 128 }"#]]
    .assert_eq(&show(&[]));
    expect![[r#"
        Batch { max_queue_size: 10000, schedule_delay: 250ms, max_export_batch_size: 1000 }
        Limits { attributes_per_span: 64, events_per_span: 10, links_per_span: 5, attributes_per_event: 16, attributes_per_link: 16 }"#]]
    .assert_eq(&show(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "10000"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"),
        ("OTEL_BSP_SCHEDULE_DELAY", "250"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "16"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "64"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "10"),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", "5"),
    ]));
    expect!["error: OTEL_BSP_MAX_QUEUE_SIZE: `2k` is not a whole number"]
        .assert_eq(&show(&[("OTEL_BSP_MAX_QUEUE_SIZE", "2k")]));
    // A queue smaller than the batch brings the batch down with it, whichever variable set it.
    expect![[r#"
        Batch { max_queue_size: 100, schedule_delay: 5s, max_export_batch_size: 100 }
        Limits { attributes_per_span: 128, events_per_span: 128, links_per_span: 128, attributes_per_event: 128, attributes_per_link: 128 }"#]]
    .assert_eq(&show(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100")]));
    expect![[r#"
        Batch { max_queue_size: 100, schedule_delay: 5s, max_export_batch_size: 100 }
        Limits { attributes_per_span: 128, events_per_span: 128, links_per_span: 128, attributes_per_event: 128, attributes_per_link: 128 }"#]]
    .assert_eq(&show(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000")]));
    expect!["error: the span queue size (0, OTEL_BSP_MAX_QUEUE_SIZE) must be from 1 to 1048576"]
        .assert_eq(&show(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")]));
    expect!["error: the span queue size (100000000, OTEL_BSP_MAX_QUEUE_SIZE) must be from 1 to 1048576"]
        .assert_eq(&show(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100000000")]));
    expect!["error: the batch size (0, OTEL_BSP_MAX_EXPORT_BATCH_SIZE) must be from 1 to the queue size (2048, OTEL_BSP_MAX_QUEUE_SIZE)"]
        .assert_eq(&show(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0")]));
    expect!["error: the batch delay (OTEL_BSP_SCHEDULE_DELAY) must be at least 1 millisecond"]
        .assert_eq(&show(&[("OTEL_BSP_SCHEDULE_DELAY", "0")]));
    expect!["error: OTEL_SPAN_LINK_COUNT_LIMIT: `-1` is not a whole number"]
        .assert_eq(&show(&[("OTEL_SPAN_LINK_COUNT_LIMIT", "-1")]));
}

/// OTEL_PROPAGATORS picks W3C trace context, baggage, both (the default) or none; a propagator this crate
/// does not have is left out (with a warning) and the others still apply.
#[test]
fn propagators_are_the_ones_named() {
    let show = |o: &Options| format!("{:?}", o.propagators);
    let cases: Vec<String> = [
        vec![],
        vec![("OTEL_PROPAGATORS", "tracecontext")],
        vec![("OTEL_PROPAGATORS", "baggage, tracecontext")],
        vec![("OTEL_PROPAGATORS", "none")],
        vec![("OTEL_PROPAGATORS", "tracecontext,b3")],
    ]
    .iter()
    .map(|vars| apply(Options::new("svc"), vars, show))
    .collect();
    expect![[r#"
        Propagators { trace_context: true, baggage: true }
        Propagators { trace_context: true, baggage: false }
        Propagators { trace_context: true, baggage: true }
        Propagators { trace_context: false, baggage: false }
        Propagators { trace_context: true, baggage: false }"#]]
    .assert_eq(&cases.join("\n"));
}
