//! Fuzz target: decoding a request frame of any API, as testkit's in-memory broker does with
//! whatever a client sends it (`message::decode_request`).
//!
//! The input is the frame without its size prefix: API key, version, the rest of the header,
//! the body. A request that decodes must re-encode and decode to the same value, and a Produce
//! request's record sets go through the record batch reader.

#![no_main]

use kingest_fuzz::exercise_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    exercise_request(data);
});
