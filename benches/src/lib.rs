//! kingest's benchmarks beyond the criterion micro-benchmarks in `benches/`: the side-by-side
//! comparison of kingest-client with librdkafka (the `rdkafka` crate) and rskafka.
//!
//! - `bench-client` (`src/bin/bench_client.rs`) runs one client, one direction, in its own
//!   process ([`clients`], [`spec`]); `bench-client measure run ...` runs it as a child and
//!   reports the child's CPU time and peak RSS from `getrusage` ([`measure`]).
//! - `side-by-side` (`src/bin/side_by_side.rs`) starts the brokers ([`brokers`]: `kingest
//!   dev-broker` and nisshi, each in its own process so that a client's figures do not include
//!   the broker's work), preloads the data ([`preload`]), runs every client over the same data
//!   and prints the table ([`table`]).
//!
//! Neither runs under `cargo test`: they are binaries, run only when asked (BENCHMARKS.md has
//! the command). The tests check that every client moves the right records, not how fast.

pub mod brokers;
pub mod clients;
pub mod measure;
pub mod preload;
pub mod spec;
pub mod table;

/// Why a benchmark run failed. The client libraries' errors are boxed: some are large.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// kingest-client failed.
    #[error("kingest client: {0}")]
    Kingest(Box<kingest_client::ClientError>),
    /// librdkafka failed.
    #[error("librdkafka: {0}")]
    Rdkafka(Box<rdkafka::error::KafkaError>),
    /// rskafka's client failed.
    #[error("rskafka: {0}")]
    Rskafka(Box<rskafka::client::error::Error>),
    /// rskafka's batch producer failed.
    #[error("rskafka producer: {0}")]
    RskafkaProducer(Box<rskafka::client::producer::Error>),
    /// A run did not do what it should (too few records, a failed delivery, a child that
    /// failed).
    #[error("{0}")]
    Run(String),
    /// A process, file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

macro_rules! boxed_from {
    ($($variant:ident: $t:ty),*) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$variant(Box::new(e))
            }
        })*
    };
}

boxed_from!(
    Kingest: kingest_client::ClientError,
    Rdkafka: rdkafka::error::KafkaError,
    Rskafka: rskafka::client::error::Error,
    RskafkaProducer: rskafka::client::producer::Error
);

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
