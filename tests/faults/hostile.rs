//! Slow and hostile clients over raw TCP: dripped headers and bodies, a flood of idle
//! connections, oversized headers and bodies, deeply nested and huge JSON. The service must
//! answer each with the right 4xx or close it within a bounded time, keep serving everyone
//! else meanwhile, and keep its memory bounded. Figures are printed for the report.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::RunningBinary;
use crate::store::{Store, TestDatabase};
use crate::support::{
    Ending, Memory, body, connect, drip, long_run, memory, open_files_limit, raw_get, raw_request,
    raw_signed_post, send_all_or_closed, start, wait_for_ending,
};

/// How long a normal request may take while the service is under attack (generous: the
/// machine is small and shared).
const SERVED_WITHIN: Duration = Duration::from_secs(30);

/// Most the server's peak memory may grow in any one of these tests: about twice what the
/// worst of them was seen to take (~30 MiB, 300 stalled half bodies), and less than the 100 MiB
/// a body read whole would take.
const PEAK_GROWTH_LIMIT_KIB: u64 = 64 * 1024;

/// Asserts that a normal read and a normal signed write are served now.
fn assert_others_are_served(service: &RunningBinary, id: &str) {
    let started = Instant::now();
    let live = raw_request(service.port, &raw_get("/health/live"), SERVED_WITHIN);
    assert_eq!(live.map(|(s, _)| s), Some(200), "liveness during the abuse");
    let posted = raw_request(service.port, &raw_signed_post(&body(id, 16)), SERVED_WITHIN);
    assert_eq!(
        posted.as_ref().map(|(s, _)| *s),
        Some(200),
        "a normal delivery during the abuse: {posted:?}"
    );
    eprintln!(
        "  a normal read and write were served in {:?}",
        started.elapsed()
    );
}

fn assert_memory_bounded(what: &str, before: Memory, after: Memory) {
    eprintln!(
        "  {what}: RSS {} KiB before, {} KiB after, peak {} KiB",
        before.rss_kib, after.rss_kib, after.peak_kib
    );
    assert!(
        after.peak_kib < before.peak_kib + PEAK_GROWTH_LIMIT_KIB,
        "{what}: peak memory grew from {} KiB to {} KiB",
        before.peak_kib,
        after.peak_kib
    );
}

#[test]
fn dripped_headers_get_408_within_a_bounded_time_while_others_are_served() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let before = memory(service.child.id());
    let port = service.port;

    let dripping = std::thread::spawn(move || {
        let mut stream = connect(port);
        let started = Instant::now();
        let headers = format!(
            "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {}\r\n\r\n",
            "a".repeat(200)
        );
        drip(
            &mut stream,
            headers.as_bytes(),
            Duration::from_millis(500),
            started,
            Duration::from_secs(30),
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_others_are_served(&service, "during-header-drip");
    let ending = dripping.join().unwrap();

    eprintln!("dripped headers (1 byte / 500 ms): {ending:?}");
    assert!(
        matches!(
            ending,
            Ending::Answered { status: 408, .. } | Ending::Closed { .. }
        ),
        "a client that never finishes its headers is answered 408 or closed: {ending:?}"
    );
    assert_memory_bounded("dripped headers", before, memory(service.child.id()));
}

#[test]
fn dripped_or_stalled_bodies_are_cut_off_within_a_bounded_time() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let request = raw_signed_post(&body("dripped-body", 2_000));
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let (head, payload) = request.split_at(head_end);
    let limit = Duration::from_secs(40);

    let port = service.port;
    let (head_for_drip, payload) = (head.to_vec(), payload.to_vec());
    let dripping = std::thread::spawn(move || {
        let mut stream = connect(port);
        let started = Instant::now();
        stream.write_all(&head_for_drip).unwrap();
        drip(
            &mut stream,
            &payload,
            Duration::from_millis(500),
            started,
            limit,
        )
    });
    let mut stalled = connect(service.port);
    let stalled_at = Instant::now();
    stalled.write_all(head).unwrap();
    let stalled_ending = wait_for_ending(&mut stalled, stalled_at, limit);
    let dripped_ending = dripping.join().unwrap();

    eprintln!(
        "dripped body (1 byte / 500 ms): {dripped_ending:?}; stalled body: {stalled_ending:?}"
    );
    for (what, ending) in [("dripped", &dripped_ending), ("stalled", &stalled_ending)] {
        assert!(
            matches!(
                ending,
                Ending::Answered { status: 408, .. } | Ending::Closed { .. }
            ),
            "a {what} body is answered 408 or closed within {limit:?}: {ending:?}"
        );
    }
}

#[test]
fn stalled_bodies_do_not_stop_others_being_served_and_memory_stays_bounded() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let before = memory(service.child.id());
    let count = if long_run() { 2_000 } else { 300 };
    let request = raw_signed_post(&body("stalled", 60_000));
    let partial = &request[..request.len() / 2];

    let stalled: Vec<TcpStream> = (0..count)
        .map(|_| {
            let mut stream = connect(service.port);
            send_all_or_closed(&mut stream, partial);
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = memory(service.child.id());
    assert_others_are_served(&service, "during-stalled-bodies");
    drop(stalled);
    std::thread::sleep(Duration::from_millis(500));
    let after = memory(service.child.id());

    eprintln!(
        "stalled bodies: {count} connections each holding ~30 KB of a 60 KB body; \
         RSS {} KiB during",
        during.rss_kib
    );
    assert_memory_bounded("stalled bodies", before, after);
    assert_others_are_served(&service, "after-stalled-bodies");
}

#[test]
fn a_flood_of_idle_connections_is_closed_in_bounded_time_while_others_are_served() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let before = memory(service.child.id());
    let wanted = if long_run() { 8_000 } else { 1_000 };
    let count = wanted.min(open_files_limit() / 2 - 64);

    // Half say nothing at all, half send the start of a request and stop.
    let opened = Instant::now();
    let mut flood: Vec<TcpStream> = (0..count)
        .map(|n| {
            let mut stream = connect(service.port);
            if n % 2 == 1 {
                send_all_or_closed(&mut stream, b"GET /health/live HTTP/1.1\r\nHost: x\r\n");
            }
            stream
        })
        .collect();
    let opened_in = opened.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let during = memory(service.child.id());
    assert_others_are_served(&service, "during-idle-flood");

    let mut endings = Vec::with_capacity(count);
    for stream in &mut flood {
        endings.push(wait_for_ending(stream, opened, Duration::from_secs(30)));
    }
    let after = memory(service.child.id());

    let still_open = endings
        .iter()
        .filter(|e| matches!(e, Ending::StillOpen))
        .count();
    let slowest = endings.iter().filter_map(Ending::after).max();
    let mut statuses = std::collections::BTreeMap::new();
    for ending in &endings {
        *statuses
            .entry(
                ending
                    .status()
                    .map_or("closed".to_owned(), |s| s.to_string()),
            )
            .or_insert(0) += 1;
    }
    eprintln!(
        "idle flood: {count} connections opened in {opened_in:?}; RSS {} KiB during; \
         endings {statuses:?}; the last closed {slowest:?} after opening",
        during.rss_kib
    );
    assert_eq!(still_open, 0, "every idle connection is closed within 30 s");
    assert!(
        endings
            .iter()
            .all(|e| matches!(e.status(), None | Some(408))),
        "idle connections get 408 or a close: {statuses:?}"
    );
    assert_memory_bounded("idle flood", before, after);
    assert_others_are_served(&service, "after-idle-flood");
}

#[test]
fn oversized_headers_are_refused_with_431_and_memory_stays_bounded() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let before = memory(service.child.id());
    let one_header = |size: usize| {
        format!(
            "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        )
        .into_bytes()
    };
    let many_headers: Vec<u8> = {
        let mut request = b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
        for n in 0..500 {
            request.extend_from_slice(format!("X-H{n}: 1\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request
    };
    let limit = Duration::from_secs(15);

    let sixty_four_kib = raw_request(service.port, &one_header(64 * 1024), limit);
    let one_mib = raw_request(service.port, &one_header(1024 * 1024), limit);
    let sixteen_mib = raw_request(service.port, &one_header(16 * 1024 * 1024), limit);
    let five_hundred = raw_request(service.port, &many_headers, limit);
    for _ in 0..20 {
        raw_request(service.port, &one_header(1024 * 1024), limit);
    }
    let after = memory(service.child.id());

    let status = |answer: &Option<(u16, String)>| answer.as_ref().map(|(s, _)| *s);
    eprintln!(
        "oversized headers: one 64 KiB header -> {:?}, 1 MiB -> {:?}, 16 MiB -> {:?}, \
         500 headers -> {:?}",
        status(&sixty_four_kib),
        status(&one_mib),
        status(&sixteen_mib),
        status(&five_hundred)
    );
    assert!(
        matches!(status(&sixty_four_kib), Some(200 | 431)),
        "a 64 KiB header is answered: {sixty_four_kib:?}"
    );
    assert_eq!(status(&one_mib), Some(431));
    assert_eq!(status(&sixteen_mib), Some(431));
    assert_eq!(status(&five_hundred), Some(431));
    assert_memory_bounded("oversized headers", before, after);
    assert_others_are_served(&service, "after-oversized-headers");
}

/// Streams up to `total` bytes of chunked body after `head`, reading for an answer between
/// chunks; returns the ending and how many body bytes went out before it.
fn stream_chunked(port: u16, head: &[u8], total: usize) -> (Ending, usize) {
    let mut stream = connect(port);
    let started = Instant::now();
    send_all_or_closed(&mut stream, head);
    let chunk = vec![b'a'; 64 * 1024];
    let framed = [
        format!("{:x}\r\n", chunk.len()).into_bytes(),
        chunk,
        b"\r\n".to_vec(),
    ]
    .concat();
    let mut sent = 0;
    while sent < total {
        if stream.write_all(&framed).is_err() {
            break;
        }
        sent += framed.len();
        let ending = wait_for_ending(&mut stream, started, started.elapsed());
        if ending != Ending::StillOpen {
            return (ending, sent);
        }
    }
    let ending = wait_for_ending(
        &mut stream,
        started,
        started.elapsed() + Duration::from_secs(20),
    );
    (ending, sent)
}

#[test]
fn oversized_bodies_are_refused_early_with_or_without_content_length() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let before = memory(service.child.id());
    let signature = "0".repeat(64);

    // A declared 100 MiB body is refused from its Content-Length, before any of it is sent.
    let mut declared = connect(service.port);
    let asked = Instant::now();
    declared
        .write_all(
            format!(
                "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Signature: {signature}\r\n\
                 Content-Length: {}\r\n\r\n",
                100 * 1024 * 1024
            )
            .as_bytes(),
        )
        .unwrap();
    let declared_ending = wait_for_ending(&mut declared, asked, Duration::from_secs(15));

    // A chunked body has no length: it is refused once the stream passes 64 KiB.
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Signature: {signature}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let (chunked_ending, chunked_sent) =
        stream_chunked(service.port, head.as_bytes(), 64 * 1024 * 1024);

    // Without a signature the answer is 401, still without reading the body.
    let mut unsigned = connect(service.port);
    let unsigned_at = Instant::now();
    unsigned
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
        .unwrap();
    let unsigned_ending = wait_for_ending(&mut unsigned, unsigned_at, Duration::from_secs(15));
    let after = memory(service.child.id());

    eprintln!(
        "oversized bodies: declared 100 MiB -> {declared_ending:?}; chunked -> {chunked_ending:?} \
         after the client sent {chunked_sent} bytes; unsigned 100 MiB -> {unsigned_ending:?}"
    );
    assert_eq!(declared_ending.status(), Some(413), "{declared_ending:?}");
    assert_eq!(chunked_ending.status(), Some(413), "{chunked_ending:?}");
    assert_eq!(unsigned_ending.status(), Some(401), "{unsigned_ending:?}");
    assert!(
        chunked_sent < 16 * 1024 * 1024,
        "the stream is refused long before 16 MiB: {chunked_sent} bytes went out"
    );
    assert_memory_bounded("oversized bodies", before, after);
    assert_others_are_served(&service, "after-oversized-bodies");
}

#[test]
fn deeply_nested_and_huge_json_is_rejected_or_accepted_without_harm() {
    let database = TestDatabase::new(Store::Sqlite);
    // Room for 100k levels of nesting and megabyte documents.
    let mut service = start(&database, &[("MAX_BODY_BYTES", "4194304")]);
    let before = memory(service.child.id());
    let valid_fields = r#""message_id":"huge","from":"+1","to":"+2","ts":"2025-01-15T10:00:00Z""#;
    let many_unknown_keys = {
        let keys: String = (0..100_000).map(|n| format!("\"k{n}\":{n},")).collect();
        format!("{{{keys}{valid_fields}}}")
    };
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        (
            "100k [",
            "[".repeat(100_000).into_bytes(),
            422,
            Some("json_invalid"),
        ),
        (
            "100k nested objects",
            "{\"a\":".repeat(100_000).into_bytes(),
            422,
            Some("json_invalid"),
        ),
        (
            "a field nested 100k deep",
            format!("{{\"message_id\":{}", "[".repeat(100_000)).into_bytes(),
            422,
            Some("json_invalid"),
        ),
        (
            "an array of 500k numbers",
            format!("[{}0]", "0,".repeat(500_000)).into_bytes(),
            422,
            Some("model_attributes_type"),
        ),
        (
            "a 3 MB text",
            format!("{{{valid_fields},\"text\":\"{}\"}}", "a".repeat(3_000_000)).into_bytes(),
            422,
            Some("string_too_long"),
        ),
        (
            "100k unknown keys around valid fields",
            many_unknown_keys.into_bytes(),
            200,
            None,
        ),
        (
            "3 MB of whitespace around an empty object",
            format!("{}{{}}{}", " ".repeat(1_500_000), " ".repeat(1_500_000)).into_bytes(),
            422,
            Some("missing"),
        ),
    ];

    let mut figures = Vec::new();
    for (what, body, expected, kind) in &cases {
        let request = raw_signed_post(body);
        for _ in 0..3 {
            let started = Instant::now();
            let answer = raw_request(service.port, &request, Duration::from_secs(60));
            let (status, text) = answer.unwrap_or_else(|| panic!("{what}: no answer"));
            assert_eq!(status, *expected, "{what}: {text:.300}");
            if let Some(kind) = kind {
                let detail: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(detail["detail"][0]["type"], *kind, "{what}: {text:.300}");
            }
            figures.push(format!("{what}: {status} in {:?}", started.elapsed()));
        }
        assert!(
            service.child.try_wait().unwrap().is_none(),
            "{what}: the process is alive"
        );
    }
    let after = memory(service.child.id());

    eprintln!("nested and huge JSON:\n  {}", figures.join("\n  "));
    assert_memory_bounded("nested and huge JSON", before, after);
    assert_others_are_served(&service, "after-huge-json");
}
