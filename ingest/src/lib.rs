//! kingest: Kafka to Arrow, Parquet and PostgreSQL, exactly once.
//!
//! The ingest engine (issue 6) is not written yet. What is here now is [`inspect`], which the
//! `kingest inspect` command uses to print the records of a raw record-set file (a captured
//! fetch response partition, such as the protocol crate's fixtures).

pub mod inspect;
