//! What the client crate's producer and consumer tests against nisshi share
//! (`tests/producer_nisshi.rs`, `tests/consumer_nisshi.rs`): records read back with plain Fetch
//! requests, so that the producer is checked by nothing but the protocol crate ([`read_back`]);
//! records written by an independent client, librdkafka, for the consumer to read
//! ([`librdkafka`]); and owned copies of a record's headers, which both compare.

pub mod librdkafka;
pub mod read_back;

use kingest_protocol::record::Headers as RecordHeaders;

/// A record's headers as owned (name, value) pairs, in order; `None` is a null value.
pub type Headers = Vec<(String, Option<Vec<u8>>)>;

/// Owned copies of `headers`, for comparing with what was sent.
///
/// # Panics
/// On a header name that is not UTF-8: every test writes UTF-8 names, so another one is a bug.
pub fn owned_headers(headers: RecordHeaders<'_>) -> Headers {
    headers
        .iter()
        .map(|h| {
            (
                String::from_utf8(h.key.to_vec()).expect("header name is UTF-8"),
                h.value.map(<[u8]>::to_vec),
            )
        })
        .collect()
}
