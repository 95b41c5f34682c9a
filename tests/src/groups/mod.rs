//! Consumer groups mixing kingest and Java client members (`tests/group_java.rs`): the members
//! ([`members`]) and the record of what each did, with the exactly-once check over it
//! ([`timeline`]).

pub mod members;
pub mod timeline;
