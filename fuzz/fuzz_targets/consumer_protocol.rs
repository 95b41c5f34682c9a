//! Fuzz target: the consumer protocol's subscription and assignment bytes
//! (`kingest_protocol::consumer_protocol`), which a group member reads from other members
//! through the broker (JoinGroup metadata, SyncGroup assignments) and testkit's coordinator
//! reads from clients.
//!
//! The first input byte picks subscription (even) or assignment (odd), the rest is the bytes,
//! version prefix included. A value that decodes must encode at the highest version, decode
//! again, and encode to the same bytes (writing normalises the order of topics and owned
//! partitions once; after that the bytes are stable).

#![no_main]

use bytes::Bytes;
use kingest_protocol::consumer_protocol::{Assignment, Subscription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(rest);
    if selector % 2 == 0 {
        match Subscription::decode(&bytes) {
            Ok(subscription) => {
                let Ok(first) = subscription.encode() else {
                    return;
                };
                let again = Subscription::decode(&first).expect("our own subscription decodes");
                let second = again.encode().expect("a decoded subscription encodes");
                assert_eq!(first, second, "subscription bytes are not stable");
            }
            Err(e) => drop(e.to_string()),
        }
    } else {
        match Assignment::decode(&bytes) {
            Ok(assignment) => {
                let Ok(first) = assignment.encode() else {
                    return;
                };
                let again = Assignment::decode(&first).expect("our own assignment decodes");
                let second = again.encode().expect("a decoded assignment encodes");
                assert_eq!(first, second, "assignment bytes are not stable");
            }
            Err(e) => drop(e.to_string()),
        }
    }
});
