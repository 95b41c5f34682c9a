//! kingest: Kafka to Arrow, Parquet and PostgreSQL, exactly once.
//!
//! The [`engine`] runs a job ([`config`]): a consumer group member that [`decode`]s records
//! into Arrow columns, keeps the rows a [`filter`] allows, and writes them to a [`sink`] with
//! the offsets they cover. The [`cli`] is the `kingest` command; [`inspect`] prints Parquet
//! output (with each file's offsets) and raw record sets for `kingest inspect`.

pub mod cli;
pub mod config;
pub mod decode;
pub mod engine;
pub mod filter;
pub mod inspect;
pub mod schema;
pub mod sink;
