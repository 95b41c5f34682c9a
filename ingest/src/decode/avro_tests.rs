//! Avro tests: payloads written by `apache-avro`'s own writer (an independent implementation),
//! framed as Confluent does, with writer schemas served by an in-test registry over HTTP
//! (basic auth checked) and two writer schemas for one topic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::{to_avro_datum, Decimal, Schema as AvroSchema};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::decode::{
    FormatSpec, RecordContext, RegistryClient, RegistryError, RegistryOptions, RowDecoder,
};
use crate::schema::{avro_columns, parse_type, ColumnSpec, FormatKind, Source};

const V1: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "score", "type": ["null", "double"], "default": null},
    {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
    {"name": "ok", "type": "boolean"},
    {"name": "ratio", "type": "float"},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "cid", "type": "int"},
      {"name": "email", "type": ["null", "string"]}
    ]}}
  ]
}"#;

/// The next version: `name` dropped, `note` added, fields reordered, `customer` optional.
const V2: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "id", "type": "long"},
    {"name": "customer", "type": ["null", {"type": "record", "name": "Customer", "fields": [
      {"name": "email", "type": ["null", "string"]},
      {"name": "cid", "type": "int"}
    ]}]},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "amount", "type": {"type": "fixed", "name": "Amt", "size": 8, "logicalType": "decimal", "precision": 12, "scale": 3}}
  ]
}"#;

fn framed(id: u32, datum: Vec<u8>) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend(datum);
    v
}

fn v1_datum(id: i64, email: Option<&str>) -> Vec<u8> {
    let schema = AvroSchema::parse_str(V1).unwrap();
    let value = Value::Record(vec![
        ("id".into(), Value::Long(id)),
        ("name".into(), Value::String("Zoë".into())),
        (
            "amount".into(),
            Value::Decimal(Decimal::from((-12345i64).to_be_bytes())),
        ),
        ("ts".into(), Value::TimestampMillis(1_644_586_485_807)),
        ("day".into(), Value::Date(19782)),
        (
            "tags".into(),
            Value::Array(vec![
                Value::String("a".into()),
                Value::String("日本".into()),
            ]),
        ),
        (
            "attrs".into(),
            Value::Map(HashMap::from([("k".to_string(), Value::Long(5))])),
        ),
        ("kind".into(), Value::Enum(1, "PAID".into())),
        (
            "score".into(),
            Value::Union(1, Box::new(Value::Double(0.5))),
        ),
        ("fx".into(), Value::Fixed(4, vec![0xde, 0xad, 0xbe, 0xef])),
        ("ok".into(), Value::Boolean(true)),
        ("ratio".into(), Value::Float(1.25)),
        (
            "customer".into(),
            Value::Record(vec![
                ("cid".into(), Value::Int(9)),
                (
                    "email".into(),
                    match email {
                        Some(e) => Value::Union(1, Box::new(Value::String(e.into()))),
                        None => Value::Union(0, Box::new(Value::Null)),
                    },
                ),
            ]),
        ),
    ]);
    to_avro_datum(&schema, value).unwrap()
}

fn v2_datum(id: i64, customer: bool) -> Vec<u8> {
    let schema = AvroSchema::parse_str(V2).unwrap();
    let customer = if customer {
        Value::Union(
            1,
            Box::new(Value::Record(vec![
                (
                    "email".into(),
                    Value::Union(1, Box::new(Value::String("b@x.io".into()))),
                ),
                ("cid".into(), Value::Int(10)),
            ])),
        )
    } else {
        Value::Union(0, Box::new(Value::Null))
    };
    let value = Value::Record(vec![
        (
            "note".into(),
            Value::Union(1, Box::new(Value::String("rush".into()))),
        ),
        ("id".into(), Value::Long(id)),
        ("customer".into(), customer),
        ("ts".into(), Value::TimestampMicros(1_644_586_485_807_123)),
        (
            "amount".into(),
            Value::Decimal(Decimal::from(1_234_567i64.to_be_bytes())),
        ),
    ]);
    to_avro_datum(&schema, value).unwrap()
}

/// A schema registry on a loopback port, answering `GET /schemas/ids/{id}` and counting
/// requests; requests without the right basic auth get 401.
struct TestRegistry {
    url: String,
    hits: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

fn serve(schemas: HashMap<u32, &'static str>, authorization: &'static str) -> TestRegistry {
    serve_with(schemas, authorization, None)
}

/// Like [`serve`], speaking TLS when given an acceptor.
fn serve_with(
    schemas: HashMap<u32, &'static str>,
    authorization: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> TestRegistry {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = match tls {
        Some(_) => format!("https://localhost:{port}"),
        None => format!("http://127.0.0.1:{port}"),
    };
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let schemas = Arc::new(schemas);
    rt.spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let schemas = schemas.clone();
            let counter = counter.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(sock).await {
                            answer(stream, &schemas, authorization, &counter).await;
                        }
                    }
                    None => answer(sock, &schemas, authorization, &counter).await,
                }
            });
        }
    });
    TestRegistry { url, hits, _rt: rt }
}

/// Answers one request on `sock`.
async fn answer<S>(
    mut sock: S,
    schemas: &HashMap<u32, &'static str>,
    authorization: &str,
    counter: &AtomicUsize,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    counter.fetch_add(1, Ordering::SeqCst);
    let req = String::from_utf8_lossy(&req);
    let path = req.split_whitespace().nth(1).unwrap_or("");
    let authorized = req.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("authorization") && v.trim() == authorization
        })
    });
    let id = path
        .strip_prefix("/schemas/ids/")
        .and_then(|i| i.parse::<u32>().ok());
    let (status, body) = match id.and_then(|i| schemas.get(&i)) {
        _ if !authorized => ("401 Unauthorized", r#"{"error_code":401}"#.to_string()),
        Some(s) => ("200 OK", serde_json::json!({ "schema": s }).to_string()),
        None => (
            "404 Not Found",
            r#"{"error_code":40403,"message":"Schema not found"}"#.to_string(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// A CA (as a PEM file in `dir`) and a TLS acceptor for `localhost` signed by it.
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(kingest_client::crypto_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    (ca_file, tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// `Basic base64("user:s3cret")`.
const AUTH: &str = "Basic dXNlcjpzM2NyZXQ=";

fn client(url: &str, password: &str) -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        urls: vec![format!("{url}/")],
        username: Some("user".into()),
        password: Some(password.into()),
        ..Default::default()
    })
    .unwrap()
}

/// Runs `f` to completion on a runtime of its own (the test registry has another).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// What the engine does with a record: fetch the schemas it needs, then append it.
fn append(dec: &mut RowDecoder, r: &RecordContext<'_>) -> Result<(), crate::decode::DecodeError> {
    for pending in dec.pending_schemas(r) {
        block_on(pending.fetch(r))?;
    }
    dec.append(r)
}

fn c(name: &str, ty: &str, src: &str) -> ColumnSpec {
    ColumnSpec::new(
        name,
        parse_type(ty).unwrap(),
        Source::parse(src, FormatKind::Avro).unwrap(),
    )
}

fn rec(value: &[u8], offset: i64) -> RecordContext<'_> {
    RecordContext {
        topic: "orders",
        partition: 0,
        offset,
        timestamp: 0,
        key: None,
        value: Some(value),
        headers: Default::default(),
    }
}

fn columns() -> Vec<ColumnSpec> {
    vec![
        c("id", "int64", "id"),
        c("name", "string", "name"),
        c("note", "string", "note"),
        c("amount", "decimal(12, 3)", "amount"),
        c("ts", "timestamp(us, UTC)", "ts"),
        c("day", "date", "day"),
        c("tags", "list<string>", "tags"),
        c("attrs", "list<struct<key: string, value: int64>>", "attrs"),
        c("kind", "string", "kind"),
        c("score", "float64", "score"),
        c("fx", "binary", "fx"),
        c("ok", "bool", "ok"),
        c("ratio", "float32", "ratio"),
        c("email", "string", "customer.email"),
        c("customer", "struct<cid: int32, email: string>", "customer"),
    ]
}

fn check_rows(b: &RecordBatch) {
    assert_eq!(b.num_rows(), 4);
    let ids = b.column(0).as_primitive::<Int64Type>();
    assert_eq!(ids.values(), &[1, 2, 3, 4]);
    let name = b.column(1).as_string::<i32>();
    assert_eq!(name.value(0), "Zoë");
    assert!(name.is_null(2) && name.is_null(3), "v2 has no name");
    let note = b.column(2).as_string::<i32>();
    assert!(note.is_null(0));
    assert_eq!(note.value(2), "rush");
    let amount = b.column(3).as_primitive::<Decimal128Type>();
    assert_eq!(amount.value_as_string(0), "-123.450");
    assert_eq!(amount.value_as_string(2), "1234.567");
    let ts = b.column(4).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.value(0), 1_644_586_485_807_000);
    assert_eq!(ts.value(2), 1_644_586_485_807_123);
    assert_eq!(b.column(5).as_primitive::<Date32Type>().value(0), 19782);
    let tags = b.column(6).as_list::<i32>();
    assert_eq!(
        tags.value(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect::<Vec<_>>(),
        ["a", "日本"]
    );
    assert!(tags.is_null(2));
    let attrs = b.column(7).as_list::<i32>().value(0);
    let attrs = attrs.as_struct();
    assert_eq!(attrs.column(0).as_string::<i32>().value(0), "k");
    assert_eq!(attrs.column(1).as_primitive::<Int64Type>().value(0), 5);
    assert_eq!(b.column(8).as_string::<i32>().value(0), "PAID");
    assert_eq!(b.column(9).as_primitive::<Float64Type>().value(0), 0.5);
    assert_eq!(
        b.column(10).as_binary::<i32>().value(0),
        [0xde, 0xad, 0xbe, 0xef]
    );
    assert!(b.column(11).as_boolean().value(0));
    assert_eq!(b.column(12).as_primitive::<Float32Type>().value(0), 1.25);
    let email = b.column(13).as_string::<i32>();
    assert_eq!(email.value(0), "a@x.io");
    assert!(email.is_null(1), "v1 null union branch");
    assert_eq!(email.value(2), "b@x.io");
    assert!(email.is_null(3), "v2 customer is null");
    let customer = b.column(14).as_struct();
    assert_eq!(
        customer.column(0).as_primitive::<Int32Type>().values()[..3],
        [9, 9, 10]
    );
    assert_eq!(customer.column(1).as_string::<i32>().value(2), "b@x.io");
    assert!(customer.is_null(3));
}

#[test]
fn two_writer_schemas_from_a_registry_with_basic_auth() {
    let reg = serve(HashMap::from([(1, V1), (2, V2)]), AUTH);
    let shared = client(&reg.url, "s3cret");
    let format = FormatSpec::avro(shared.clone());
    let mut dec = RowDecoder::new(&columns(), &format, None).unwrap();
    let values = [
        framed(1, v1_datum(1, Some("a@x.io"))),
        framed(1, v1_datum(2, None)),
        framed(2, v2_datum(3, true)),
        framed(2, v2_datum(4, false)),
    ];
    let pending = dec.pending_schemas(&rec(&values[0], 0));
    assert_eq!(pending.iter().map(|p| p.id()).collect::<Vec<_>>(), [1]);
    // Without the fetch, the decoder says so instead of waiting on the network.
    let e = dec.append(&rec(&values[0], 0)).unwrap_err();
    assert!(
        matches!(
            *e.kind,
            crate::decode::DecodeErrorKind::Registry {
                source: RegistryError::NotFetched { id: 1 },
                ..
            }
        ),
        "{e}"
    );
    block_on(pending[0].fetch(&rec(&values[0], 0))).unwrap();
    assert!(dec.pending_schemas(&rec(&values[0], 0)).is_empty());
    for (i, v) in values.iter().enumerate() {
        append(&mut dec, &rec(v, i as i64)).unwrap();
    }
    check_rows(&dec.finish());
    // Each id was fetched once; another partition's decoder sharing the client fetches
    // nothing.
    assert_eq!(reg.hits.load(Ordering::SeqCst), 2);
    let mut other = RowDecoder::new(&columns(), &format, None).unwrap();
    assert!(other.pending_schemas(&rec(&values[2], 0)).is_empty());
    for (i, v) in values.iter().enumerate() {
        append(&mut other, &rec(v, i as i64)).unwrap();
    }
    check_rows(&other.finish());
    assert_eq!(reg.hits.load(Ordering::SeqCst), 2);
}

#[test]
fn registry_failures_are_typed() {
    let reg = serve(HashMap::from([(1, V1)]), AUTH);
    let cols = [c("id", "int64", "id")];
    let mut wrong_pw =
        RowDecoder::new(&cols, &FormatSpec::avro(client(&reg.url, "nope")), None).unwrap();
    let v = framed(1, v1_datum(1, None));
    let e = append(&mut wrong_pw, &rec(&v, 5)).unwrap_err();
    assert!(e.to_string().contains("schema id 1: GET"), "{e}");
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(!e.is_retriable());

    let mut dec =
        RowDecoder::new(&cols, &FormatSpec::avro(client(&reg.url, "s3cret")), None).unwrap();
    let unknown = framed(99, v1_datum(1, None));
    let e = append(&mut dec, &rec(&unknown, 6)).unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    let e = append(&mut dec, &rec(b"\x01\x00\x00\x00\x01", 7)).unwrap_err();
    assert!(e.to_string().contains("first byte is not 0"), "{e}");
    let e = append(&mut dec, &rec(b"\x00\x00", 8)).unwrap_err();
    assert!(
        e.to_string().contains("shorter than the 5-byte header"),
        "{e}"
    );
    // Good, truncated, good: the truncated one appends nothing.
    let good = framed(1, v1_datum(1, Some("a@x.io")));
    append(&mut dec, &rec(&good, 9)).unwrap();
    let e = append(&mut dec, &rec(&good[..good.len() - 3], 10)).unwrap_err();
    assert!(e.to_string().contains("bad Avro data"), "{e}");
    let mut extra = good.clone();
    extra.push(0);
    let e = append(&mut dec, &rec(&extra, 11)).unwrap_err();
    assert!(
        e.to_string()
            .contains("1 trailing bytes after the Avro value"),
        "{e}"
    );
    append(&mut dec, &rec(&good, 12)).unwrap();
    assert_eq!(dec.finish().num_rows(), 2);

    let down = RegistryClient::new(RegistryOptions {
        urls: vec!["http://127.0.0.1:1".into()],
        ..Default::default()
    })
    .unwrap();
    let mut dec = RowDecoder::new(&cols, &FormatSpec::avro(down), None).unwrap();
    let e = append(&mut dec, &rec(&good, 13)).unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert!(matches!(
        *e.kind,
        crate::decode::DecodeErrorKind::Registry {
            source: RegistryError::Http { .. },
            ..
        }
    ));
}

#[test]
fn type_mismatches_name_the_column() {
    let registry = RegistryClient::offline();
    registry.insert(1, V1).unwrap();
    let cols = [
        c("tags", "int64", "tags"),
        c("customer", "list<int8>", "customer"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::avro(registry), None).unwrap();
    let e = dec
        .append(&rec(&framed(1, v1_datum(1, None)), 0))
        .unwrap_err();
    assert_eq!(e.column.as_deref(), Some("tags"));
    assert!(
        e.to_string()
            .contains("(Avro field tags): expected int64, found an array"),
        "{e}"
    );
}

#[test]
fn avro_keys_and_primitive_schemas() {
    let registry = RegistryClient::offline();
    registry.insert(3, r#""string""#).unwrap();
    let key_col = ColumnSpec::new(
        "k",
        parse_type("string").unwrap(),
        Source::parse_with_key("__key:", FormatKind::Json, Some(FormatKind::Avro)).unwrap(),
    );
    let key_fmt = FormatSpec::avro(registry);
    let mut dec = RowDecoder::new(&[key_col], &FormatSpec::json(), Some(&key_fmt)).unwrap();
    let key = framed(
        3,
        to_avro_datum(&AvroSchema::String, Value::String("user-1".into())).unwrap(),
    );
    let mut r = rec(b"{}", 0);
    r.key = Some(&key);
    dec.append(&r).unwrap();
    assert_eq!(dec.finish().column(0).as_string::<i32>().value(0), "user-1");
}

#[test]
fn recursive_schemas_and_deep_data_are_bounded() {
    let registry = RegistryClient::offline();
    registry
        .insert(
            4,
            r#"{"type": "record", "name": "Node", "fields": [
                {"name": "v", "type": "int"},
                {"name": "next", "type": ["null", "Node"]}]}"#,
        )
        .unwrap();
    let cols = [c("v", "int32", "v"), c("v2", "int32", "next.v")];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::avro(registry), None).unwrap();
    // v=1, next -> (v=2, next -> null)
    let v = framed(4, vec![2, 2, 4, 0]);
    append(&mut dec, &rec(&v, 0)).unwrap();
    // A chain deeper than the limit: v=0, branch 1, repeated.
    let mut deep = vec![0, 0, 0, 0, 4];
    for _ in 0..1000 {
        deep.extend([0, 2]);
    }
    deep.extend([0, 0]);
    let e = append(&mut dec, &rec(&deep, 1)).unwrap_err();
    assert!(e.to_string().contains("nested more than"), "{e}");
    let b = dec.finish();
    assert_eq!(b.num_rows(), 1);
    assert_eq!(b.column(1).as_primitive::<Int32Type>().value(0), 2);
}

#[test]
fn registry_over_tls_with_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, acceptor) = test_pki(dir.path());
    let reg = serve_with(HashMap::from([(1, V1)]), AUTH, Some(acceptor));
    let trusted = RegistryClient::new(RegistryOptions {
        urls: vec![reg.url.clone()],
        username: Some("user".into()),
        password: Some("s3cret".into()),
        ca_file: Some(ca_file),
        ..Default::default()
    })
    .unwrap();
    let cols = [c("id", "int64", "id")];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::avro(trusted), None).unwrap();
    append(&mut dec, &rec(&framed(1, v1_datum(5, None)), 0)).unwrap();
    assert_eq!(
        dec.finish().column(0).as_primitive::<Int64Type>().value(0),
        5
    );
    // Without the CA file the server's certificate is not trusted.
    let untrusted = client(&reg.url, "s3cret");
    let e = block_on(untrusted.fetch(1)).unwrap_err();
    assert!(matches!(e, RegistryError::Http { .. }), "{e}");
}

#[test]
fn columns_from_an_avro_schema() {
    let cols = avro_columns(&AvroSchema::parse_str(V1).unwrap()).unwrap();
    let types: Vec<(String, String, bool)> = cols
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                crate::schema::format_type(&c.data_type),
                c.nullable,
            )
        })
        .collect();
    let want = [
        ("id", "int64", false),
        ("name", "string", false),
        ("amount", "decimal(10, 2)", false),
        ("ts", "timestamp(ms, UTC)", false),
        ("day", "date", false),
        ("tags", "list<string>", false),
        ("attrs", "list<struct<key: string, value: int64>>", false),
        ("kind", "string", false),
        ("score", "float64", true),
        ("fx", "binary", false),
        ("ok", "bool", false),
        ("ratio", "float32", false),
        ("customer", "struct<cid: int32, email: string>", false),
    ];
    assert_eq!(
        types,
        want.map(|(n, t, b)| (n.to_string(), t.to_string(), b))
    );
    // The inferred columns decode the schema's own data.
    let registry = RegistryClient::offline();
    registry.insert(1, V1).unwrap();
    let mut dec = RowDecoder::new(&cols, &FormatSpec::avro(registry), None).unwrap();
    append(&mut dec, &rec(&framed(1, v1_datum(7, Some("z@x.io"))), 0)).unwrap();
    let b = dec.finish();
    assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), 7);
    assert_eq!(
        b.column(3)
            .as_primitive::<TimestampMillisecondType>()
            .value(0),
        1_644_586_485_807
    );
    let e = avro_columns(
        &AvroSchema::parse_str(
            r#"{"type": "record", "name": "x", "fields": [
        {"name": "u", "type": ["int", "string"]}]}"#,
        )
        .unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("several non-null types"), "{e}");
    assert!(avro_columns(&AvroSchema::Long).is_err());
}
