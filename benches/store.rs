//! The store alone, without HTTP: how many rows per second the single writer commits, and how
//! many bytes it writes per row, for several batch sizes, on an empty database and on one that
//! already holds rows. Run with `cargo bench --bench store`; `STORE_BENCH_ROWS` (default 200000)
//! and `STORE_BENCH_PREFILL` (default 1000000) change the sizes.

use std::time::Instant;

use webhook_processor::domain::NewMessage;
use webhook_processor::storage::sqlite::SqliteStorage;
use webhook_processor::storage::{ImportRow, Load, MessageWriter, Storage};

/// A small deterministic generator, so every run stores the same rows.
struct Rows {
    state: u64,
    n: u64,
    senders: Vec<String>,
}

impl Rows {
    fn new(seed: u64) -> Self {
        let mut rows = Self {
            state: seed,
            n: 0,
            senders: Vec::new(),
        };
        rows.senders = (0..10_000)
            .map(|_| format!("+1{}", 1_000_000_000 + rows.next_u64() % 9_000_000_000))
            .collect();
        rows
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn message(&mut self) -> NewMessage {
        self.n += 1;
        let id = format!("SM{:016x}", self.next_u64());
        let sender = (self.next_u64() % 10_000) as usize;
        let from = self.senders[sender].clone();
        let to = format!("+1415555010{}", self.next_u64() % 5);
        let seconds = 1_736_935_200 + self.n / 50;
        let text = "x".repeat(20 + (self.next_u64() % 180) as usize);
        let body = serde_json::json!({"message_id": id, "from": from, "to": to,
            "ts": webhook_processor::domain::timestamp::format_micros(seconds as i64 * 1_000_000),
            "text": text});
        NewMessage::from_json(body.to_string().as_bytes()).expect("valid generated message")
    }
}

fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("write_bytes: ")?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time this thread has used, in seconds (user and system), from /proc.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn measure(
    label: &str,
    writer: &mut dyn MessageWriter,
    rows: &mut Rows,
    count: usize,
    batch: usize,
) {
    let batches: Vec<Vec<NewMessage>> = (0..count / batch)
        .map(|_| (0..batch).map(|_| rows.message()).collect())
        .collect();
    let bytes_before = written_bytes();
    let cpu_before = thread_cpu_seconds();
    let started = Instant::now();
    for batch in &batches {
        writer.insert_batch(batch).expect("the batch is stored");
    }
    let seconds = started.elapsed().as_secs_f64();
    let stored = (batches.len() * batch) as f64;
    println!(
        "{label:<28} batch {batch:>5}  {:>9.0} rows/s  {:>6.1} KiB written/row  {:>5.1} µs CPU/row",
        stored / seconds,
        (written_bytes() - bytes_before) as f64 / stored / 1024.0,
        (thread_cpu_seconds() - cpu_before) * 1e6 / stored
    );
}

/// Runs the store's background work (WAL checkpoints) beside the writer, as the service does.
fn with_maintenance(storage: &SqliteStorage, work: impl FnOnce()) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut task = storage.background();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(task) = task.as_mut() {
                    let _ = task.step(Load::Busy);
                    std::thread::sleep(task.interval());
                }
            }
        });
        work();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

fn main() {
    let count: usize = std::env::var("STORE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let prefill: usize = std::env::var("STORE_BENCH_PREFILL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("a temporary folder");

    for batch in [64, 256, 1024] {
        let storage =
            SqliteStorage::initialize(dir.path().join(format!("empty-{batch}.db"))).expect("db");
        let mut writer = storage.writer();
        with_maintenance(&storage, || {
            measure(
                "empty database",
                &mut *writer,
                &mut Rows::new(batch as u64),
                count,
                batch,
            )
        });
    }

    let storage = SqliteStorage::initialize(dir.path().join("prefilled.db")).expect("db");
    let mut writer = storage.writer();
    let mut rows = Rows::new(7);
    let mut prefill_rows = (0..prefill).map(|_| {
        Ok(ImportRow {
            message: rows.message(),
            received_at: None,
        })
    });
    let started = Instant::now();
    writer
        .import(&mut prefill_rows, None, &mut |_| {})
        .expect("prefill");
    println!(
        "prefill {prefill} rows by import: {:.0} rows/s",
        prefill as f64 / started.elapsed().as_secs_f64()
    );
    with_maintenance(&storage, || {
        for batch in [64, 256, 1024] {
            measure(
                &format!("{prefill} rows stored"),
                &mut *writer,
                &mut rows,
                count,
                batch,
            );
        }
    });
}
