//! Fuzz target: decoding a MetadataResponse frame, as the client does with what a broker sends.
//!
//! The first input byte picks the version in the message's whole range, the rest is the frame
//! (response header and body, no size prefix) handed to `message::decode_response::<MetadataRequest>`.
//! A response that decodes must re-encode and decode to the same value.

#![no_main]

use kingest_fuzz::exercise_response;
use kingest_protocol::kafka_protocol::messages::MetadataRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    exercise_response::<MetadataRequest>(data);
});
