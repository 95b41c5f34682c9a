// The Apache Kafka Java client (kafka-clients) driven from the integration tests: each
// subcommand does one thing a test needs from the reference client and prints what it did as
// JSON lines on stdout (logs go to stderr). Built by tests/src/peers/java.rs with javac; the jars
// come from scripts/setup.sh.
//
//   produce   bootstrap=B topic=T [txn.id=ID] txns=N per.txn=K partitions=P [abort=1,3] [prefix=S]
//             N transactions (or N rounds without txn.id) of K records; record j of round i is
//             "S-i-j" to partition j % P; rounds listed in abort= are aborted. One line per round:
//             {"round":i,"committed":true|false,"values":[...]}
//   consume   bootstrap=B topic=T isolation=read_committed|read_uncommitted
//             Reads every partition from the beginning to the end offsets seen at the start (the
//             last stable offset under read_committed). One line per record:
//             {"partition":p,"offset":o,"value":"..."}
//   group     bootstrap=B topic=T group=G isolation=... expect=N
//             A group member (subscribe, earliest) reading until N records, then commitSync;
//             fails after 60 s without them.
//   member    bootstrap=B topic=T group=G strategy=range|cooperative-sticky [instance=ID]
//             [session.ms=6000] [process.us=0] [idle.ms=0] [protocol=classic|consumer]
//             With protocol=consumer (KIP-848, group.protocol=consumer) strategy= is the
//             broker-side assignor (uniform, range, or default) and session.ms is the broker's;
//             "assigned" lines then give -1 positions.
//             A group member that commits synchronously after processing each poll's records
//             (processing: print them, then sleep process.us per record); a refused commit is
//             retried at the next poll. It stops, closing the
//             consumer, when stdin closes or says "stop", on SIGTERM, or after idle.ms (when > 0)
//             without records. Lines (t: wall clock, microseconds since the epoch):
//             {"ev":"assigned","t":t,"partitions":[p...],"positions":[o...]} (the added ones)
//             {"ev":"revoked"|"lost","t":t,"partitions":[p...]}
//             {"ev":"record","p":p,"o":o,"v":"..."}
//             {"ev":"committed","t":t,"offsets":{"p":o,...}}  (after commitSync succeeded)
//             {"ev":"commit_failed","t":t,"error":"..."}
//             {"ev":"closed","t":t}
//   committed bootstrap=B topic=T group=G
//             The group's committed offsets and the end offsets:
//             {"partition":p,"offset":o,"end":e} (offset -1 when none).
//   fence     bootstrap=B txn.id=ID [topic=T value=V]
//             initTransactions (fencing any older producer with the id); with topic=, one
//             committed transaction holding V. Prints {"initialized":true}.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.BufferedOutputStream;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.*;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class KafkaPeer {
    public static void main(String[] argv) throws Exception {
        if (argv.length < 1) {
            throw new IllegalArgumentException("usage: KafkaPeer produce|consume|group|member|committed|fence key=value...");
        }
        Map<String, String> a = new HashMap<>();
        for (int i = 1; i < argv.length; i++) {
            int eq = argv[i].indexOf('=');
            if (eq < 0) throw new IllegalArgumentException("expected key=value, got " + argv[i]);
            a.put(argv[i].substring(0, eq), argv[i].substring(eq + 1));
        }
        switch (argv[0]) {
            case "produce": produce(a); break;
            case "consume": consume(a); break;
            case "group": group(a); break;
            case "member": member(a); break;
            case "committed": committed(a); break;
            case "fence": fence(a); break;
            default: throw new IllegalArgumentException("unknown subcommand " + argv[0]);
        }
        System.out.flush();
    }

    static String need(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) throw new IllegalArgumentException("missing " + k + "=");
        return v;
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static Properties producerProps(Map<String, String> a) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, need(a, "bootstrap"));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, a.getOrDefault("compression", "lz4"));
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        if (a.containsKey("txn.id")) {
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, a.get("txn.id"));
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000");
        }
        return p;
    }

    static Properties consumerProps(Map<String, String> a) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, need(a, "bootstrap"));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, a.getOrDefault("isolation", "read_committed"));
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        if (a.containsKey("group")) p.put(ConsumerConfig.GROUP_ID_CONFIG, a.get("group"));
        return p;
    }

    static void produce(Map<String, String> a) throws Exception {
        String topic = need(a, "topic");
        int rounds = Integer.parseInt(need(a, "txns"));
        int perTxn = Integer.parseInt(need(a, "per.txn"));
        int partitions = Integer.parseInt(need(a, "partitions"));
        String prefix = a.getOrDefault("prefix", "java");
        Set<Integer> abort = new HashSet<>();
        for (String s : a.getOrDefault("abort", "").split(",")) {
            if (!s.isEmpty()) abort.add(Integer.parseInt(s));
        }
        boolean txn = a.containsKey("txn.id");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(a))) {
            if (txn) p.initTransactions();
            for (int i = 0; i < rounds; i++) {
                if (txn) p.beginTransaction();
                List<String> values = new ArrayList<>();
                for (int j = 0; j < perTxn; j++) {
                    String v = prefix + "-" + i + "-" + j;
                    p.send(new ProducerRecord<>(topic, j % partitions, v, v));
                    values.add(v);
                }
                boolean committed = !abort.contains(i);
                if (txn && committed) p.commitTransaction();
                else if (txn) p.abortTransaction();
                else p.flush();
                StringBuilder b = new StringBuilder();
                b.append("{\"round\":").append(i).append(",\"committed\":").append(committed).append(",\"values\":[");
                for (int k = 0; k < values.size(); k++) {
                    if (k > 0) b.append(',');
                    b.append(json(values.get(k)));
                }
                System.out.println(b.append("]}"));
            }
        }
    }

    static void printRecord(ConsumerRecord<String, String> r) {
        System.out.println("{\"partition\":" + r.partition() + ",\"offset\":" + r.offset()
                + ",\"value\":" + (r.value() == null ? "null" : json(r.value())) + "}");
    }

    static void consume(Map<String, String> a) {
        String topic = need(a, "topic");
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(a))) {
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(30))) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            // Under read_committed these are the last stable offsets.
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (c.position(tp, Duration.ofSeconds(30)) < end.get(tp)) done = false;
                }
                if (done) break;
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    printRecord(r);
                }
            }
        }
    }

    static void group(Map<String, String> a) {
        String topic = need(a, "topic");
        int expect = Integer.parseInt(need(a, "expect"));
        int seen = 0;
        long deadline = System.currentTimeMillis() + 60_000;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(a))) {
            c.subscribe(Collections.singletonList(topic));
            while (seen < expect) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("only " + seen + " of " + expect + " records within 60 s");
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    printRecord(r);
                    seen++;
                }
            }
            c.commitSync();
        }
    }

    static long micros() {
        return ChronoUnit.MICROS.between(Instant.EPOCH, Instant.now());
    }

    static String partitionList(Collection<TopicPartition> tps) {
        StringBuilder b = new StringBuilder("[");
        for (TopicPartition tp : tps) {
            if (b.length() > 1) b.append(',');
            b.append(tp.partition());
        }
        return b.append(']').toString();
    }

    static void member(Map<String, String> a) throws Exception {
        String topic = need(a, "topic");
        Properties p = consumerProps(a);
        need(a, "group");
        String strategy = need(a, "strategy");
        boolean consumerProtocol = a.getOrDefault("protocol", "classic").equals("consumer");
        if (consumerProtocol) {
            // KIP-848: the broker assigns (strategy= names its assignor) and sets the session
            // and heartbeat timing; the client refuses those classic settings.
            p.put("group.protocol", "consumer");
            if (!strategy.equals("default")) p.put("group.remote.assignor", strategy);
            if (a.containsKey("instance")) p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, a.get("instance"));
        } else {
            if (strategy.equals("range")) {
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
            } else if (strategy.equals("cooperative-sticky")) {
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
            } else {
                throw new IllegalArgumentException("strategy= range or cooperative-sticky, got " + strategy);
            }
            if (a.containsKey("instance")) p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, a.get("instance"));
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, a.getOrDefault("session.ms", "6000"));
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        }
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "500");
        // The rebalance timeout: bounds a rebalance waiting for a member that died mid-way.
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "20000");
        long processUs = Long.parseLong(a.getOrDefault("process.us", "0"));
        long idleMs = Long.parseLong(a.getOrDefault("idle.ms", "0"));
        // Lines are flushed before each commit and after each rebalance callback: what a commit
        // covers is on stdout before the commit is made (a kill -9 can lose only what follows).
        PrintStream out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false, "UTF-8");
        AtomicBoolean stop = new AtomicBoolean(false);
        CountDownLatch closed = new CountDownLatch(1);
        KafkaConsumer<String, String> c = new KafkaConsumer<>(p);
        // Processed and not yet committed: a refused commit is retried at the next poll, records
        // or not (the last batch of a partition has no later records to carry its commit).
        Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, "UTF-8"))) {
                String line;
                while ((line = r.readLine()) != null && !line.trim().equals("stop")) { }
            } catch (Exception e) {
                // Same as end of input.
            }
            stop.set(true);
        });
        stdin.setDaemon(true);
        stdin.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // No wakeup(): it could interrupt a commit, leaving unknown whether it landed. The
            // loop sees the flag within one poll.
            stop.set(true);
            try {
                closed.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        try {
            c.subscribe(Collections.singletonList(topic), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> tps) {
                    pending.keySet().removeAll(tps);
                    out.println("{\"ev\":\"revoked\",\"t\":" + micros() + ",\"partitions\":" + partitionList(tps) + "}");
                    out.flush();
                }
                public void onPartitionsLost(Collection<TopicPartition> tps) {
                    pending.keySet().removeAll(tps);
                    out.println("{\"ev\":\"lost\",\"t\":" + micros() + ",\"partitions\":" + partitionList(tps) + "}");
                    out.flush();
                }
                public void onPartitionsAssigned(Collection<TopicPartition> tps) {
                    long t = micros();
                    StringBuilder positions = new StringBuilder("[");
                    for (TopicPartition tp : tps) {
                        if (positions.length() > 1) positions.append(',');
                        // KIP-848 (3.9's AsyncKafkaConsumer): position() inside this callback
                        // can wait out its 60 s timeout on partitions handed over by members
                        // leaving at that moment; -1 ("unknown, the first record tells") instead.
                        positions.append(consumerProtocol ? -1 : c.position(tp));
                    }
                    out.println("{\"ev\":\"assigned\",\"t\":" + t + ",\"partitions\":" + partitionList(tps)
                            + ",\"positions\":" + positions.append(']') + "}");
                    out.flush();
                }
            });
            long lastRecord = System.currentTimeMillis();
            while (!stop.get()) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) {
                    if (idleMs > 0 && System.currentTimeMillis() - lastRecord > idleMs) break;
                    if (pending.isEmpty()) continue;
                } else {
                    lastRecord = System.currentTimeMillis();
                    for (ConsumerRecord<String, String> r : recs) {
                        out.println("{\"ev\":\"record\",\"p\":" + r.partition() + ",\"o\":" + r.offset() + ",\"v\":"
                                + (r.value() == null ? "null" : json(r.value())) + "}");
                        pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    }
                    out.flush();
                    if (processUs > 0) Thread.sleep(processUs * recs.count() / 1000, (int) (processUs * recs.count() % 1000) * 1000);
                }
                try {
                    c.commitSync(pending);
                    StringBuilder b = new StringBuilder("{");
                    for (Map.Entry<TopicPartition, OffsetAndMetadata> e : pending.entrySet()) {
                        if (b.length() > 1) b.append(',');
                        b.append('"').append(e.getKey().partition()).append("\":").append(e.getValue().offset());
                    }
                    out.println("{\"ev\":\"committed\",\"t\":" + micros() + ",\"offsets\":" + b.append('}') + "}");
                    pending.clear();
                } catch (CommitFailedException | org.apache.kafka.common.errors.RebalanceInProgressException
                        | org.apache.kafka.common.errors.StaleMemberEpochException
                        | org.apache.kafka.common.errors.FencedMemberEpochException
                        | org.apache.kafka.common.errors.UnknownMemberIdException e) {
                    out.println("{\"ev\":\"commit_failed\",\"t\":" + micros() + ",\"error\":" + json(e.toString()) + "}");
                }
                out.flush();
            }
        } finally {
            c.close(Duration.ofSeconds(10));
            out.println("{\"ev\":\"closed\",\"t\":" + micros() + "}");
            out.flush();
            closed.countDown();
        }
    }

    static void committed(Map<String, String> a) {
        String topic = need(a, "topic");
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(a))) {
            Set<TopicPartition> tps = new TreeSet<>(Comparator.comparingInt(TopicPartition::partition));
            for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(30))) {
                tps.add(new TopicPartition(topic, pi.partition()));
            }
            Map<TopicPartition, OffsetAndMetadata> got = c.committed(tps, Duration.ofSeconds(30));
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            for (TopicPartition tp : tps) {
                OffsetAndMetadata o = got.get(tp);
                System.out.println("{\"partition\":" + tp.partition() + ",\"offset\":" + (o == null ? -1 : o.offset())
                        + ",\"end\":" + end.get(tp) + "}");
            }
        }
    }

    static void fence(Map<String, String> a) {
        need(a, "txn.id");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps(a))) {
            p.initTransactions();
            if (a.containsKey("topic")) {
                p.beginTransaction();
                p.send(new ProducerRecord<>(a.get("topic"), 0, null, need(a, "value")));
                p.commitTransaction();
            }
            System.out.println("{\"initialized\":true}");
        }
    }
}
