//! Consumer groups mixing kingest, Java client and librdkafka members (`tests/group_java.rs`,
//! `tests/group_kip848.rs`): the members ([`members`], [`rdkafka_member`]) and the record of
//! what each did, with the exactly-once check over it ([`timeline`]).

pub mod members;
pub mod rdkafka_member;
pub mod timeline;
