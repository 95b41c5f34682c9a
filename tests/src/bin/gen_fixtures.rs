//! Writes the golden fixtures that come from librdkafka (via nisshi) and from snappy-java.
//!
//! Run by `scripts/gen-fixtures.sh`, which starts the broker and also runs the kafka-python step:
//!
//! ```text
//! gen_fixtures librdkafka --broker 127.0.0.1:PORT --out DIR [--broker-name "nisshi 0.8.1"] [--codecs none,gzip,...]
//! gen_fixtures java-snappy --out DIR --source XerialSnappy.java --classpath snappy-java.jar [--java java]
//! ```

use std::net::ToSocketAddrs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use kingest_protocol::record::Compression;
use kingest_tests::fixtures::{self, capture::Capture, java};

/// `--name value` options after the subcommand.
struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    fn parse(rest: &[String]) -> Result<Self> {
        let mut pairs = Vec::new();
        let mut it = rest.iter();
        while let Some(name) = it.next() {
            let Some(name) = name.strip_prefix("--") else {
                bail!("unexpected argument {name:?}");
            };
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            pairs.push((name.to_owned(), value.clone()));
        }
        Ok(Self { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn need(&self, name: &str) -> Result<&str> {
        self.get(name)
            .with_context(|| format!("--{name} is required"))
    }
}

fn librdkafka(args: &Args) -> Result<()> {
    let broker = args.need("broker")?;
    let out = PathBuf::from(args.need("out")?);
    let broker_name = args.get("broker-name").unwrap_or("the broker");
    let codecs = match args.get("codecs") {
        None => Compression::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|c| Compression::from_name(c).with_context(|| format!("unknown codec {c:?}")))
            .collect::<Result<_>>()?,
    };
    let upstream = broker
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("no address for {broker}"))?;
    let capture = Capture::start(upstream)?;
    for codec in codecs {
        let notes = fixtures::librdkafka_fixture(broker, broker_name, &capture, codec, &out)
            .with_context(|| format!("librdkafka fixture for {codec}"))?;
        println!("librdkafka-{codec}:");
        for note in notes {
            println!("  {note}");
        }
    }
    Ok(())
}

fn java_snappy(args: &Args) -> Result<()> {
    let out = PathBuf::from(args.need("out")?);
    let source = PathBuf::from(args.need("source")?);
    let classpath = args.need("classpath")?;
    let java = args.get("java").unwrap_or("java");
    let work = std::env::temp_dir().join(format!("kingest-xerial-{}", std::process::id()));
    let (bytes, json) = java::xerial_fixture(java, classpath, &source, &work)?;
    let _ = std::fs::remove_dir_all(&work);
    std::fs::write(out.join("java-xerial-snappy.bin"), &bytes)?;
    json.write(&out.join("java-xerial-snappy.json"))?;
    println!("java-xerial-snappy: {} bytes, {}", bytes.len(), json.writer);
    Ok(())
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        bail!("usage: gen_fixtures (librdkafka|java-snappy) --out DIR ...");
    };
    let args = Args::parse(rest)?;
    match command.as_str() {
        "librdkafka" => librdkafka(&args),
        "java-snappy" => java_snappy(&args),
        other => bail!("unknown command {other:?}"),
    }
}
