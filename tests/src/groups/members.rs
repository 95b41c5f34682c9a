//! Consumer-group members for the mixed-group tests: the Java client (the `member` subcommand of
//! `tests/java/KafkaPeer.java`, one process per member) and kingest's `GroupConsumer` (one task
//! per member). Both process a record by reporting it to a [`Board`], spend a fixed time per
//! record (so that joins and leaves happen while the topic is being consumed), and commit
//! synchronously after each batch; both report their assignment changes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kingest_client::group::consumer::{GroupConsumer, GroupConsumerConfig, GroupEvent};
use kingest_client::Client;
use serde_json::Value;

use super::timeline::{now_micros, Board, Event};
use crate::peers::java::JavaPeer;

/// How a Java member is started.
#[derive(Debug, Clone)]
pub struct JavaMemberOptions {
    /// The broker.
    pub bootstrap: String,
    /// The topic subscribed to.
    pub topic: String,
    /// `group.id`.
    pub group: String,
    /// `range` or `cooperative-sticky`; with the consumer protocol, the broker-side assignor
    /// (`uniform`, `range`, or `default`).
    pub strategy: String,
    /// `group.protocol`: `classic` or `consumer` (KIP-848).
    pub protocol: String,
    /// `group.instance.id` (static membership).
    pub instance: Option<String>,
    /// `session.timeout.ms`.
    pub session_ms: u64,
    /// Processing time per record, in microseconds.
    pub process_us: u64,
}

/// A Java member process.
pub struct JavaMember {
    name: String,
    board: Arc<Board>,
    child: Child,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<Vec<String>>>,
    stderr: Option<JoinHandle<String>>,
}

impl JavaMember {
    /// Starts a member named `name` (its events go to `board` under that name).
    pub fn start(name: &str, board: Arc<Board>, o: &JavaMemberOptions) -> JavaMember {
        let mut args = vec![
            format!("bootstrap={}", o.bootstrap),
            format!("topic={}", o.topic),
            format!("group={}", o.group),
            format!("strategy={}", o.strategy),
            format!("session.ms={}", o.session_ms),
            format!("process.us={}", o.process_us),
            format!("protocol={}", o.protocol),
        ];
        if let Some(i) = &o.instance {
            args.push(format!("instance={i}"));
        }
        let mut command = JavaPeer::get().command("member", &args);
        command.stdin(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start Java member {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (member, b) = (name.to_owned(), board.clone());
        // Returns the lines that are not events (a kill can cut the last one short).
        let reader = std::thread::spawn(move || {
            let mut bad = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line)
                    .ok()
                    .as_ref()
                    .and_then(Event::from_java)
                {
                    Some(e) => b.push(&member, e),
                    None => bad.push(line),
                }
            }
            bad
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        JavaMember {
            name: name.to_owned(),
            board,
            stdin: child.stdin.take(),
            child,
            reader: Some(reader),
            stderr: Some(stderr),
        }
    }

    /// The member's name on the board.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn finish(&mut self) -> (Vec<String>, String) {
        let bad = self
            .reader
            .take()
            .map(|r| r.join().expect("the Java member's reader thread"))
            .unwrap_or_default();
        let err = self
            .stderr
            .take()
            .map(|r| r.join().expect("the Java member's stderr thread"))
            .unwrap_or_default();
        (bad, err)
    }

    /// Asks the member to stop (it closes its consumer) and waits for it.
    pub fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for the Java member") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let (_, err) = self.finish();
                panic!("Java member {} did not stop within 60 s:\n{err}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (bad, err) = self.finish();
        assert!(
            status.success() && bad.is_empty(),
            "Java member {} ended with {status}; unexpected lines {bad:?}; stderr:\n{err}",
            self.name
        );
    }

    /// Waits up to `timeout` for the member to end by itself; its exit status and stderr, or
    /// `None` (and the member) if it is still running.
    pub fn wait_exit(
        mut self,
        timeout: Duration,
    ) -> Result<(std::process::ExitStatus, String), JavaMember> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for the Java member") {
                let (_, err) = self.finish();
                return Ok((s, err));
            }
            if Instant::now() > deadline {
                return Err(self);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: the member dies without closing; its session must expire.
    pub fn kill(mut self) {
        self.board.may_hide_last_commit(&self.name);
        self.child.kill().expect("kill the Java member");
        self.child.wait().expect("wait for the killed Java member");
        let t = now_micros();
        let (bad, err) = self.finish();
        // Only the last line can have been cut short.
        assert!(
            bad.len() <= 1,
            "Java member {}: unexpected lines {bad:?}; stderr:\n{err}",
            self.name
        );
        self.board.push(&self.name, Event::Crashed { t });
    }
}

impl Drop for JavaMember {
    fn drop(&mut self) {
        // A test that panicked: leave no JVM behind.
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const RUN: u8 = 0;
const STOP: u8 = 1;
const CRASH: u8 = 2;

/// A kingest member task.
pub struct KingestMember {
    name: String,
    control: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl KingestMember {
    /// Starts a member of `config`'s group reading `topic`, named `name` on the board.
    pub fn start(
        name: &str,
        board: Arc<Board>,
        client: Client,
        config: GroupConsumerConfig,
        topic: &str,
        process_us: u64,
    ) -> KingestMember {
        let control = Arc::new(AtomicU8::new(RUN));
        let member = GroupConsumer::new(client, config).expect("a valid group consumer config");
        let task = tokio::spawn(run(
            name.to_owned(),
            board,
            member,
            topic.to_owned(),
            process_us,
            control.clone(),
        ));
        KingestMember {
            name: name.to_owned(),
            control,
            task,
        }
    }

    /// The member's name on the board.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the consumer (a dynamic member leaves the group; a static one does not).
    pub async fn stop(self) {
        self.control.store(STOP, Ordering::SeqCst);
        self.task.await.expect("the kingest member's task");
    }

    /// Drops the consumer without leaving or committing: its session must expire.
    pub async fn crash(self) {
        self.control.store(CRASH, Ordering::SeqCst);
        self.task.await.expect("the kingest member's task");
    }
}

async fn run(
    name: String,
    board: Arc<Board>,
    mut member: GroupConsumer,
    topic: String,
    process_us: u64,
    control: Arc<AtomicU8>,
) {
    // Per partition, the next offset after the records processed since the last commit.
    let mut pending: std::collections::BTreeMap<i32, i64> = Default::default();
    loop {
        match control.load(Ordering::SeqCst) {
            CRASH => {
                drop(member);
                board.push(&name, Event::Crashed { t: now_micros() });
                return;
            }
            STOP => {
                if let Err(e) = member.close().await {
                    board.push(
                        &name,
                        Event::Error {
                            t: now_micros(),
                            error: format!("close: {e}"),
                        },
                    );
                }
                board.push(&name, Event::Closed { t: now_micros() });
                return;
            }
            _ => {}
        }
        let event = match tokio::time::timeout(Duration::from_millis(300), member.poll()).await {
            Err(_) => None,
            Ok(Err(e)) => {
                board.push(
                    &name,
                    Event::Error {
                        t: now_micros(),
                        error: format!("poll: {e}"),
                    },
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Ok(Ok(e)) => Some(e),
        };
        let t = now_micros();
        match event {
            None => {}
            Some(GroupEvent::Assigned(ps)) => {
                let partitions: Vec<i32> = ps.iter().map(|(_, p)| *p).collect();
                let positions = partitions
                    .iter()
                    .map(|p| {
                        member
                            .partition_consumer()
                            .position(&topic, *p)
                            .unwrap_or(-1)
                    })
                    .collect();
                board.push(
                    &name,
                    Event::Assigned {
                        t,
                        partitions,
                        positions,
                    },
                );
            }
            Some(GroupEvent::Revoked(ps) | GroupEvent::Lost(ps)) => {
                let partitions: Vec<i32> = ps.iter().map(|(_, p)| *p).collect();
                // What was processed since the last commit is left to the next owner.
                for p in &partitions {
                    pending.remove(p);
                }
                board.push(&name, Event::Revoked { t, partitions });
            }
            Some(GroupEvent::Records(fetched)) => {
                let mut n = 0u64;
                for r in fetched.records() {
                    let value = r
                        .record
                        .value
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    board.push(
                        &name,
                        Event::Record {
                            partition: r.partition,
                            offset: r.record.offset,
                            value,
                        },
                    );
                    pending.insert(r.partition, r.record.offset + 1);
                    n += 1;
                }
                tokio::time::sleep(Duration::from_micros(process_us * n)).await;
            }
        }
        // After processing; a refused commit is retried at the next poll, records or not (the
        // last batch of a partition has no later records to carry its commit).
        if pending.is_empty() {
            continue;
        }
        match member.commit().await {
            Ok(()) => board.push(
                &name,
                Event::Committed {
                    t: now_micros(),
                    offsets: std::mem::take(&mut pending),
                },
            ),
            Err(e) => board.push(
                &name,
                Event::CommitFailed {
                    t: now_micros(),
                    error: e.to_string(),
                },
            ),
        }
    }
}
