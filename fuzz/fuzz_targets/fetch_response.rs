//! Fuzz target: decoding a FetchResponse frame, then every partition's records.
//!
//! The first input byte picks the version in FetchRequest's whole range, the rest is the frame
//! (response header and body, no size prefix) handed to `message::decode_response`. A response
//! that decodes must re-encode and decode to the same value, and each partition's `records` goes
//! through the record batch reader as a consumer reads it (see `kingest_fuzz`).

#![no_main]

use kingest_fuzz::{exercise_record_set, exercise_response, fuzz_options};
use kingest_protocol::kafka_protocol::messages::FetchRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(response) = exercise_response::<FetchRequest>(data) else {
        return;
    };
    let opts = fuzz_options(true);
    for topic in &response.responses {
        for partition in &topic.partitions {
            if let Some(records) = &partition.records {
                exercise_record_set(records.clone(), &opts, false);
            }
        }
    }
});
