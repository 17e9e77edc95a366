//! The change feed raced: writers sending concurrently (duplicates, `ts` far in the past,
//! senders shared by every writer's messages) while one consumer follows `/messages/feed` page
//! by page and another follows `/messages/stream`, dropping its connection at random moments
//! and resuming with `Last-Event-ID`. Shared by the in-process tests (`feed.rs`, one service)
//! and the replica tests (`../faults/feed.rs`, several replicas on one database): both point
//! them at base URLs, and each consumer and writer spreads its requests over all of them.
//!
//! A run is reproducible from the seed it prints (`FEED_SEED=<seed>` replays it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;

use crate::helpers::{message, sign_with};

/// The longest any consumer may take to follow the feed to its head, however busy the machine.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

/// Senders and recipients shared by every writer's messages, so batches share them.
const SENDERS: [&str; 3] = ["+4915100000001", "+4915100000002", "+4915100000003"];
const RECIPIENTS: [&str; 2] = ["+14155550111", "+14155550112"];

/// A small deterministic generator (xorshift64*), so that a failing run can be replayed.
pub struct Random(u64);

impl Random {
    /// Seeded from `FEED_SEED` when set, else from the clock; prints the seed.
    pub fn seeded(test: &str) -> Self {
        let seed = std::env::var("FEED_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("after 1970")
                    .as_nanos() as u64
            });
        eprintln!("{test}: FEED_SEED={seed}");
        Self(seed | 1)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }

    /// Another generator, drawn from this one, for a task of its own.
    pub fn fork(&mut self) -> Self {
        Self(self.below(u64::MAX) | 1)
    }
}

/// A message as a consumer received it: its position, and the message without it.
#[derive(Clone, Debug)]
pub struct Received {
    pub seq: u64,
    pub message: Value,
}

impl Received {
    /// A feed entry (`{"seq", ...message}`), as `/messages/feed` and the stream send it.
    fn of(entry: &Value) -> Self {
        let mut message = entry.clone();
        let seq = message
            .as_object_mut()
            .and_then(|fields| fields.remove("seq"))
            .and_then(|seq| seq.as_u64())
            .unwrap_or_else(|| panic!("a feed entry has a seq: {entry}"));
        Self { seq, message }
    }
}

/// How the writers write.
#[derive(Clone, Debug)]
pub struct WritePlan {
    pub writers: usize,
    /// Each writer stops sending once this much time has passed...
    pub duration: Duration,
    /// ...or once it has sent this many messages.
    pub max_per_writer: usize,
}

impl WritePlan {
    /// `writers` writers for about 3 s (30 s with `FAULTS_LONG=1`).
    pub fn for_a_race(writers: usize) -> Self {
        let long = crate::helpers::long_run();
        Self {
            writers,
            duration: Duration::from_secs(if long { 30 } else { 3 }),
            max_per_writer: if long { 100_000 } else { 400 },
        }
    }
}

/// What the writers did.
#[derive(Debug, Default)]
pub struct Written {
    /// Ids answered 200 (first deliveries and duplicates alike).
    pub acknowledged: HashSet<String>,
    /// Each writer's own new ids, in the order it sent them, each sent only after the one
    /// before was answered: their positions must increase in that order.
    pub in_order: Vec<Vec<String>>,
    pub statuses: BTreeMap<u16, usize>,
}

/// Writer `w`'s `n`th new message: ids unique to it, senders and recipients shared by all
/// writers, and one in three with a `ts` decades in the past.
fn new_message(w: usize, n: usize) -> Value {
    let ts = if n.is_multiple_of(3) {
        format!(
            "19{:02}-0{}-15T10:00:{:02}Z",
            70 + (w * 7 + n) % 29,
            1 + n % 9,
            n % 60
        )
    } else {
        format!("2025-01-15T{:02}:{:02}:{:02}.{w}Z", 10 + n % 3, n % 60, w)
    };
    let text = (!n.is_multiple_of(7)).then(|| format!("writer {w}, message {n}"));
    message(
        &format!("w{w}-{n}"),
        SENDERS[(w + n) % SENDERS.len()],
        RECIPIENTS[n % RECIPIENTS.len()],
        &ts,
        text.as_deref(),
    )
}

/// The `k`th message every writer sends (the same body from each): a delivery repeated
/// at about the same moment, to different replicas when there are several.
fn shared_message(k: usize) -> Value {
    message(
        &format!("shared-{k}"),
        SENDERS[k % SENDERS.len()],
        RECIPIENTS[0],
        &format!("2001-09-{:02}T08:46:{:02}Z", 1 + k % 28, k % 60),
        Some("sent by every writer"),
    )
}

/// Sends the writers' messages to `bases`, each writer one message at a time: in every five,
/// three new ones of its own, one repeat of its own from before, and one message every writer
/// sends. A `503` is retried (bounded); anything else but `200` fails the test.
pub async fn write_concurrently(
    client: &reqwest::Client,
    bases: &[String],
    secret: &str,
    plan: &WritePlan,
) -> Written {
    let writers = (0..plan.writers).map(|w| async move {
        let started = Instant::now();
        let mut written = Written::default();
        let mut own = Vec::new();
        for n in 0..plan.max_per_writer {
            if started.elapsed() >= plan.duration {
                break;
            }
            let (body, base) = match n % 5 {
                4 => (shared_message(n / 5), &bases[w % bases.len()]),
                2 if n > 2 => (new_message(w, n - 2), &bases[(w + n + 1) % bases.len()]),
                _ => {
                    own.push(format!("w{w}-{n}"));
                    (new_message(w, n), &bases[(w + n) % bases.len()])
                }
            };
            let id = body["message_id"].as_str().expect("an id").to_owned();
            let status = post_until_taken(client, base, secret, &body, &mut written).await;
            if status == 200 {
                written.acknowledged.insert(id);
            }
        }
        written.in_order.push(own);
        written
    });
    let mut all = Written::default();
    for written in futures_util::future::join_all(writers).await {
        all.acknowledged.extend(written.acknowledged);
        all.in_order.extend(written.in_order);
        for (status, count) in written.statuses {
            *all.statuses.entry(status).or_default() += count;
        }
    }
    all
}

/// POSTs `body` signed with `secret` to `base`, again after a `503` (at most 50 times);
/// returns the last status.
async fn post_until_taken(
    client: &reqwest::Client,
    base: &str,
    secret: &str,
    body: &Value,
    written: &mut Written,
) -> u16 {
    let bytes = serde_json::to_vec(body).expect("a message serializes");
    let signature = sign_with(secret, &bytes);
    for _ in 0..50 {
        let status = client
            .post(format!("{base}/webhook"))
            .header("X-Signature", &signature)
            .body(bytes.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{base}: a delivery gets an answer: {e}"))
            .status()
            .as_u16();
        *written.statuses.entry(status).or_default() += 1;
        match status {
            503 => actix_web::rt::time::sleep(Duration::from_millis(50)).await,
            200 => return status,
            other => panic!("{base}: a valid delivery answered {other}: {body}"),
        }
    }
    503
}

/// The head once the writers are done: consumers follow until they reach it.
pub type Head = watch::Receiver<Option<u64>>;

/// The newest position, as `/messages/feed` reports it at `base`.
pub async fn feed_head(client: &reqwest::Client, base: &str) -> u64 {
    let page: Value = client
        .get(format!("{base}/messages/feed?limit=1"))
        .send()
        .await
        .expect("the feed answers")
        .json()
        .await
        .expect("a feed page");
    page["head"].as_u64().expect("a head")
}

/// What one consumer received, and how many requests or connections it took.
#[derive(Debug, Default)]
pub struct Followed {
    pub received: Vec<Received>,
    pub connections: usize,
    /// `event: gap` seen on a stream.
    pub gaps: usize,
}

/// Follows `/messages/feed` from the beginning, `limit` at a time with `wait=1`, each request to
/// the next of `bases`, always after the `next_after` it was given, until `head` is known and
/// reached.
pub async fn follow_pages(
    client: &reqwest::Client,
    bases: &[String],
    limit: u32,
    mut head: Head,
) -> Followed {
    let started = Instant::now();
    let mut followed = Followed::default();
    let mut after = 0;
    loop {
        if head.borrow_and_update().is_some_and(|head| after >= head) {
            return followed;
        }
        assert!(
            started.elapsed() < CATCH_UP_LIMIT,
            "the page consumer reached {after} in {CATCH_UP_LIMIT:?}, head {:?}",
            *head.borrow()
        );
        let base = &bases[followed.connections % bases.len()];
        followed.connections += 1;
        let url = format!("{base}/messages/feed?after={after}&limit={limit}&wait=1");
        let response = client.get(&url).send().await.expect("the feed answers");
        assert_eq!(response.status().as_u16(), 200, "{url}");
        let page: Value = response.json().await.expect("a feed page");
        let data = page["data"].as_array().expect("data is a list");
        assert!(data.len() <= limit as usize, "at most {limit}: {page}");
        followed.received.extend(data.iter().map(Received::of));
        let next_after = page["next_after"].as_u64().expect("next_after");
        if let Some(last) = followed.received.last().filter(|_| !data.is_empty()) {
            assert!(
                next_after >= last.seq,
                "next_after is past what was given: {page}"
            );
        } else {
            assert_eq!(next_after, after, "nothing new, the position stays: {page}");
        }
        after = next_after;
    }
}

/// Follows `/messages/stream` from the beginning, each connection to a random one of `bases`,
/// dropped after a random number of events or a random time (possibly in the middle of an
/// event), and resumed with `Last-Event-ID` set to the last whole event's id (beside an
/// `after=0` the header must override), until `head` is known and reached.
pub async fn follow_stream(
    client: &reqwest::Client,
    bases: &[String],
    mut random: Random,
    head: Head,
) -> Followed {
    let started = Instant::now();
    let mut followed = Followed::default();
    let mut last: Option<u64> = None;
    loop {
        let reached = |head: &Head, last: Option<u64>| {
            head.borrow().is_some_and(|head| last.unwrap_or(0) >= head)
        };
        if reached(&head, last) {
            return followed;
        }
        assert!(
            started.elapsed() < CATCH_UP_LIMIT,
            "the stream consumer reached {last:?} in {CATCH_UP_LIMIT:?}, head {:?}",
            *head.borrow()
        );
        let base = &bases[random.below(bases.len() as u64) as usize];
        let limit = 1 + random.below(20);
        let mut request = client.get(format!("{base}/messages/stream?after=0&limit={limit}"));
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let mut response = request.send().await.expect("the stream answers");
        assert_eq!(response.status().as_u16(), 200, "{base}: the stream opens");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        followed.connections += 1;
        let until = tokio::time::Instant::now() + Duration::from_millis(20 + random.below(400));
        let mut events_left = 1 + random.below(60);
        let mut pending = Vec::new();
        'connection: loop {
            let chunk = tokio::select! {
                chunk = response.chunk() => chunk,
                () = tokio::time::sleep_until(until) => break 'connection,
            };
            let Ok(Some(chunk)) = chunk else {
                break 'connection;
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = pending.drain(..end + 2).collect();
                match parse_event(&event) {
                    Event::Message(received) => {
                        assert!(
                            last.is_none_or(|last| received.seq > last),
                            "{base}: after {last:?} the stream sent position {}",
                            received.seq
                        );
                        last = Some(received.seq);
                        followed.received.push(received);
                        events_left = events_left.saturating_sub(1);
                    }
                    Event::Gap => followed.gaps += 1,
                    Event::Comment => {}
                }
                if events_left == 0 || reached(&head, last) {
                    // Whatever of the next event has arrived is dropped with the connection.
                    break 'connection;
                }
            }
        }
    }
}

/// One Server-Sent Event of the feed's stream.
pub enum Event {
    /// `id: <seq>` and the entry as `data:`; the two must agree.
    Message(Received),
    /// `event: gap`: messages after the position were deleted by retention.
    Gap,
    /// A comment line, the heartbeat.
    Comment,
}

/// Reads one event (its lines, up to the blank line that ends it).
pub fn parse_event(event: &[u8]) -> Event {
    let text = std::str::from_utf8(event).expect("events are UTF-8");
    let mut id = None;
    let mut data = None;
    let mut kind = None;
    for line in text.lines().filter(|line| !line.is_empty()) {
        match line.split_once(": ") {
            Some(("id", value)) => id = Some(value.parse::<u64>().expect("a numeric id")),
            Some(("data", value)) => data = Some(value),
            Some(("event", value)) => kind = Some(value),
            _ if line.starts_with(':') => return Event::Comment,
            _ => panic!("an unexpected line in the stream: {line:?}"),
        }
    }
    match (kind, id, data) {
        (Some("gap"), None, Some(_)) => Event::Gap,
        (None, Some(id), Some(data)) => {
            let received = Received::of(&serde_json::from_str(data).expect("data is JSON"));
            assert_eq!(received.seq, id, "the event's id is its entry's seq");
            Event::Message(received)
        }
        _ => panic!("an event that is neither a message nor a gap: {text:?}"),
    }
}

/// Asserts that `who` received exactly the `stored` messages (as the export lists them,
/// compared field by field), each once, in strictly increasing position.
fn assert_exactly_the_stored(who: &str, followed: &Followed, stored: &[Value]) {
    let positions: Vec<u64> = followed.received.iter().map(|r| r.seq).collect();
    if let Some(at) = positions.windows(2).position(|pair| pair[0] >= pair[1]) {
        panic!(
            "{who}: positions not strictly increasing at {at}: {:?}",
            &positions[at.saturating_sub(2)..(at + 3).min(positions.len())]
        );
    }
    let by_id = |messages: Vec<&Value>| -> BTreeMap<String, Value> {
        let mut map = BTreeMap::new();
        for message in messages {
            let id = message["message_id"].as_str().expect("an id").to_owned();
            assert!(
                map.insert(id.clone(), message.clone()).is_none(),
                "{who}: {id} seen twice"
            );
        }
        map
    };
    let received = by_id(followed.received.iter().map(|r| &r.message).collect());
    let stored = by_id(stored.iter().collect());
    let missing: Vec<_> = stored
        .keys()
        .filter(|id| !received.contains_key(*id))
        .collect();
    let extra: Vec<_> = received
        .keys()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{who}: {} stored messages never received (e.g. {:?}), {} received but not stored \
         (e.g. {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)]
    );
    assert_eq!(received, stored, "{who}: each message as stored");
}

/// Asserts that each writer's new messages have increasing positions in the order it sent
/// them (each was sent after the one before was committed), and that every acknowledged id is
/// stored.
fn assert_in_commit_order(followed: &Followed, written: &Written) {
    let seq_of: HashMap<&str, u64> = followed
        .received
        .iter()
        .map(|r| (r.message["message_id"].as_str().expect("an id"), r.seq))
        .collect();
    for id in &written.acknowledged {
        assert!(
            seq_of.contains_key(id.as_str()),
            "{id} acknowledged, never received"
        );
    }
    for own in &written.in_order {
        let positions: Vec<(&str, u64)> = own
            .iter()
            .filter_map(|id| Some((id.as_str(), *seq_of.get(id.as_str())?)))
            .collect();
        for pair in positions.windows(2) {
            assert!(
                pair[0].1 < pair[1].1,
                "sent one after the other, committed in that order: {pair:?}"
            );
        }
    }
}

/// Asserts what a race must end with: each consumer received exactly the `stored` messages,
/// once each, in strictly increasing position; each writer's messages in the order it sent
/// them; no gap (nothing was deleted); and enough messages to have raced. Prints the figures.
pub fn assert_the_race_lost_nothing(
    what: &str,
    (pages, stream, written): &(Followed, Followed, Written),
    stored: &[Value],
    took: Duration,
) {
    assert_exactly_the_stored("the page consumer", pages, stored);
    assert_exactly_the_stored("the stream consumer", stream, stored);
    assert_in_commit_order(pages, written);
    assert_eq!(stream.gaps, 0, "nothing was deleted");
    assert!(
        stored.len() >= 50,
        "the writers stored enough to race: {}",
        stored.len()
    );
    eprintln!(
        "{what}: {} stored in {took:?} ({} acknowledged, statuses {:?}); pages in {} requests, \
         the stream in {} connections",
        stored.len(),
        written.acknowledged.len(),
        written.statuses,
        pages.connections,
        stream.connections
    );
}

/// Races the writers of `plan` (sending to `bases`) against a page consumer and a stream
/// consumer (reading from `bases`); returns what each consumer received once both have
/// reached the head the writers left, and what the writers did.
pub async fn race(
    client: &reqwest::Client,
    bases: &[String],
    secret: &str,
    plan: &WritePlan,
    random: &mut Random,
) -> (Followed, Followed, Written) {
    let (done, head) = watch::channel(None);
    let pages = follow_pages(client, bases, 7, head.clone());
    let stream = follow_stream(client, bases, random.fork(), head);
    let writing = async {
        let written = write_concurrently(client, bases, secret, plan).await;
        let head = feed_head(client, &bases[0]).await;
        done.send_replace(Some(head));
        written
    };
    tokio::join!(pages, stream, writing)
}
