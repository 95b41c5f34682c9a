//! Resource use of one run: `bench-client measure ARGS...` starts `bench-client ARGS...` as its
//! only child, waits for it, and reads `getrusage(RUSAGE_CHILDREN)`. With a single child that
//! is exactly the child's user and system CPU (all its threads, librdkafka's included) and its
//! peak resident set size, which a parent with several children (brokers, earlier runs) could
//! not get: `ru_maxrss` of `RUSAGE_CHILDREN` is the largest of all waited-for children.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;

use crate::spec::{Measured, RunResult};
use crate::Error;

fn seconds(t: TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

/// The last line of `stdout` that parses as `T` (earlier lines may be a library's chatter).
pub fn last_json<T: serde::de::DeserializeOwned>(stdout: &[u8]) -> Option<T> {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
}

/// Runs `exe args` as this process's only child and measures it. Its standard error passes
/// through; its standard output must end with a [`RunResult`] line.
pub fn measure_child(exe: &Path, args: &[String]) -> Result<Measured, Error> {
    let usage = |what: &str| {
        getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|e| Error::Io {
            context: format!("getrusage {what} the run"),
            source: e.into(),
        })
    };
    let before = usage("before")?;
    let started = Instant::now();
    let output = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(Error::io(format!("running {}", exe.display())))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let after = usage("after")?;
    if !output.status.success() {
        return Err(Error::Run(format!(
            "{} {} exited with {}",
            exe.display(),
            args.join(" "),
            output.status
        )));
    }
    let result: RunResult = last_json(&output.stdout).ok_or_else(|| {
        Error::Run(format!(
            "{} {} printed no result line; its output: {}",
            exe.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        ))
    })?;
    Ok(Measured {
        result,
        wall_seconds,
        user_seconds: seconds(after.user_time()) - seconds(before.user_time()),
        system_seconds: seconds(after.system_time()) - seconds(before.system_time()),
        max_rss_kib: u64::try_from(after.max_rss()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_is_the_last_json_line() {
        let out = b"%3|librdkafka chatter\n{\"records\":1,\"bytes\":2,\"seconds\":0.5}\n\n";
        let r: RunResult = last_json(out).unwrap();
        assert_eq!(r.records, 1);
        assert_eq!(r.bytes, 2);
        assert!(last_json::<RunResult>(b"nothing here").is_none());
    }

    #[test]
    fn a_child_is_measured() {
        // `sh` burns a little CPU and prints a result line: the figures come from getrusage.
        let script = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
                      echo '{\"records\":3,\"bytes\":300,\"seconds\":0.1}'";
        let m = measure_child(Path::new("sh"), &["-c".into(), script.into()]).unwrap();
        assert_eq!(m.result.records, 3);
        assert!(m.cpu_seconds() > 0.0, "{m:?}");
        assert!(m.max_rss_kib > 0, "{m:?}");
        assert!(m.wall_seconds > 0.0);
        let failed = measure_child(Path::new("sh"), &["-c".into(), "exit 3".into()]);
        assert!(matches!(failed, Err(Error::Run(_))), "{failed:?}");
    }
}
