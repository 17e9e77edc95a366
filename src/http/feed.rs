//! `GET /messages/feed` and `GET /messages/stream`: the change feed, every stored message at its
//! position in commit order, read page by page (optionally held until news) or as
//! Server-Sent Events. A consumer that always continues after the position it was last given
//! sees every message once and never skips one; see `domain::feed`.
//!
//! Held requests and open streams wait for news without working ([`FeedNews`]), and end at
//! once when the service begins to stop, so the consumer resumes on another replica. A stream
//! whose consumer has not read what it was sent for [`SLOW_CONSUMER_LIMIT`] is ended when its
//! connection next drains: it resumes from its last id, and a stream holds at most one read
//! (at most [`STREAM_READ`] messages) in memory meanwhile.

use std::time::{Duration, Instant};

use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::{Bytes, Data, Json};
use actix_web::{CustomizeResponder, HttpRequest, HttpResponse, get};

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::ReadAccess;
use super::messages::{NO_STORE, ReadFailures, not_stored, query_pairs};
use crate::actors::feed::{FeedNews, Watching};
use crate::actors::{HealthHandle, ReaderPool};
use crate::domain::validation::{FieldError, Location};
use crate::domain::{FeedEntry, FeedPage, FeedQuery};
use crate::error::{ApiError, ValidationErrorBody};

/// A comment line sent on an idle stream this often, so proxies keep the connection.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// A stream whose consumer has not taken what it was sent for this long is ended.
pub const SLOW_CONSUMER_LIMIT: Duration = Duration::from_secs(30);
/// The most messages a stream reads at once.
pub const STREAM_READ: u32 = 100;

/// One read of the feed.
#[derive(Serialize, ToSchema)]
pub struct FeedBody {
    /// The messages after `after`, in position order, each with its position `seq`.
    pub data: Vec<FeedEntry>,
    /// The position to ask `after` next time: the last message's, or further when the read
    /// looked further and nothing more matched; `after` itself when nothing is new.
    pub next_after: u64,
    /// The newest position given to a message: `head - next_after` is how far behind the
    /// consumer is (at most; with filters, fewer of those may match).
    pub head: u64,
    /// The oldest position still stored, `null` when nothing is; older messages were deleted
    /// by retention.
    #[schema(required = true)]
    pub oldest: Option<u64>,
    /// True when messages after `after` were deleted by retention before this read: the data
    /// starts at the oldest kept.
    pub skipped_deleted: bool,
}

impl FeedBody {
    /// The body of `page`, read after position `after`.
    fn of(page: FeedPage, after: u64) -> Self {
        Self {
            skipped_deleted: page.skipped_deleted(after),
            data: page.entries,
            next_after: page.next_after,
            head: page.head,
            oldest: page.oldest,
        }
    }
}

/// The parameters of `/messages/feed` and `/messages/stream`, as the OpenAPI document lists
/// them; `FeedQuery` parses them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "only describes the parameters; FeedQuery parses them"
)]
pub struct FeedParams {
    /// Messages at positions after this one; `0` (the default) from the beginning.
    #[param(minimum = 0, default = 0)]
    after: Option<u64>,
    /// Messages per answer (per read, for a stream, which sends at most 100 at once).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
    /// `/messages/feed` only: when nothing is new, how many seconds to hold the request for a
    /// message to be committed before answering (possibly with no data).
    #[param(minimum = 0, maximum = 60, default = 0)]
    wait: Option<u64>,
    /// Only messages from this sender, E.164.
    #[param(pattern = r"^\+[0-9]{1,15}$", example = "+919876543210")]
    from: Option<String>,
    /// Only messages to this recipient, E.164.
    #[param(pattern = r"^\+[0-9]{1,15}$", example = "+14155550100")]
    to: Option<String>,
}

/// Read the feed
///
/// Every stored message at its position, in the order messages were committed, after
/// `after`. Continue with `after=<next_after>`: each message is then seen once and none is
/// skipped, whatever order the senders' `ts` come in and however many replicas write. With
/// `wait`, a request finding nothing new is held until a message is committed (answered within
/// about 100 ms of it) or the wait ends.
#[utoipa::path(
    operation_id = "read_feed",
    tag = "read",
    params(FeedParams),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The messages after `after`", body = FeedBody,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 422, description = "A parameter is malformed or out of range; `loc` is \
            `[\"query\", name]`", body = ValidationErrorBody),
        ReadFailures,
    )
)]
#[get("/messages/feed")]
pub async fn feed(
    _: ReadAccess,
    req: HttpRequest,
    readers: Data<ReaderPool>,
    news: Data<FeedNews>,
    health: Data<HealthHandle>,
) -> Result<CustomizeResponder<Json<FeedBody>>, ApiError> {
    let pairs = query_pairs(&req)?;
    let (query, wait) = FeedQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let page = readers.feed(query.clone()).await?;
    let (page, after) = if page.entries.is_empty() && !wait.is_zero() && !health.is_stopping() {
        let until = tokio::time::Instant::now() + wait;
        (news.watch())
            .read_until_found(&readers, &health, query, page, until)
            .await?
    } else {
        (page, query.after)
    };
    Ok(not_stored(Json(FeedBody::of(page, after))))
}

/// Stream the feed
///
/// The feed as Server-Sent Events (`text/event-stream`): one event per message, `id: <seq>`
/// and the message with its `seq` as `data:`, in position order, from `after` or from the
/// `Last-Event-ID` a reconnecting client sends (which wins), then each message as it is
/// committed. An idle stream gets a comment line (`: keep-alive`) every 15 s. When messages
/// after the position were deleted by retention, an event `gap` (`data: {"oldest": N}`) comes
/// first. The stream ends when the service stops, when the database fails, and when the
/// consumer has not read what it was sent for 30 s; the consumer resumes from its last id.
#[utoipa::path(
    operation_id = "stream_feed",
    tag = "read",
    params(
        FeedParams,
        ("Last-Event-ID" = Option<String>, Header, pattern = r"^[0-9]{1,19}$",
            description = "The last `id` received, a position: the stream resumes after it \
            (and `after` is ignored)"),
    ),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "Server-Sent Events, one per message",
            content_type = "text/event-stream", body = StreamEvent,
            headers(("Cache-Control" = String, description = "`no-store`")),
            example = "id: 42\ndata: {\"seq\":42,\"message_id\":\"m1\",\"from\":\"+919876543210\",\"to\":\"+14155550100\",\"ts\":\"2025-01-15T10:00:00Z\",\"text\":\"Hello\"}\n\n"),
        (status = 422, description = "A parameter or `Last-Event-ID` is malformed; `loc` is \
            `[\"query\", name]` or `[\"header\", \"Last-Event-ID\"]`", body = ValidationErrorBody),
        ReadFailures,
    )
)]
#[get("/messages/stream")]
pub async fn stream(
    _: ReadAccess,
    req: HttpRequest,
    readers: Data<ReaderPool>,
    news: Data<FeedNews>,
    health: Data<HealthHandle>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let (mut query, _) =
        FeedQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    if let Some(last) = last_event_id(&req)? {
        query.after = last;
    }
    query.limit = query.limit.min(STREAM_READ);
    // The first read comes before the answer, so an unavailable database is a proper 503.
    let first = readers.feed(query.clone()).await?;
    let events = Events {
        readers: readers.get_ref().clone(),
        health: health.get_ref().clone(),
        watching: news.watch(),
        head_seen: 0,
        query,
        pending: Some(first),
        more_now: false,
        sent_at: None,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((CACHE_CONTROL, NO_STORE))
        .streaming(futures_util::stream::unfold(events, Events::next)))
}

/// The most digits a `Last-Event-ID` may have: every position fits in 19 (they are below 2^63).
const LAST_EVENT_ID_DIGITS: usize = 19;

/// The `Last-Event-ID` header, a position (decimal digits only), if sent.
fn last_event_id(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|value| value.len() <= LAST_EVENT_ID_DIGITS)
        .filter(|value| value.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|value| value.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                Location::header("Last-Event-ID"),
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            )])
        })
}

/// One event of `/messages/stream` as an SSE client reads it (the OpenAPI 3.1 reading of a
/// `text/event-stream` schema: it describes each event). [`Events`] writes the frames.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "only describes the events in the document; Events::events_of writes them"
)]
struct StreamEvent {
    /// `message` (sent as no `event:` line) for a message; `gap` when messages after the
    /// position were deleted by retention.
    #[schema(value_type = Option<String>, pattern = "^(message|gap)$")]
    event: Option<String>,
    /// The message's position (`seq`): the `Last-Event-ID` to resume after it.
    #[schema(pattern = "^[0-9]+$")]
    id: Option<String>,
    /// A message event: the message with its `seq`, as JSON (the items of `/messages/feed`).
    /// A `gap` event: `{"oldest": N}`, the oldest position still stored.
    data: String,
}

/// An open stream: where it is, and what it read and has yet to send.
struct Events {
    readers: ReaderPool,
    health: HealthHandle,
    /// Counts the stream as a consumer, and brings news of commits.
    watching: Watching,
    /// Where the stream continues (`after`), and with which filters.
    query: FeedQuery,
    /// The newest position the last read saw.
    head_seen: u64,
    /// A read not sent yet.
    pending: Option<FeedPage>,
    /// The last read was full: more may be there already.
    more_now: bool,
    /// When the last chunk was handed over, to tell a consumer that does not read.
    sent_at: Option<Instant>,
}

impl Events {
    /// The next chunk of the stream, or `None` to end it.
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self
            .sent_at
            .is_some_and(|at| at.elapsed() > SLOW_CONSUMER_LIMIT)
        {
            tracing::info!("ending a feed stream whose consumer does not keep up");
            return None;
        }
        if self.health.is_stopping() {
            return None;
        }
        let chunk = match self.pending.take() {
            Some(page) => self.events_of(page),
            None => self.read_or_wait().await?,
        };
        self.sent_at = Some(Instant::now());
        Some((Ok(chunk), self))
    }

    /// The next read that finds messages, or a heartbeat when none comes for [`HEARTBEAT`];
    /// `None` when the stream must end (the service stops, the database fails).
    async fn read_or_wait(&mut self) -> Option<Bytes> {
        loop {
            if !self.more_now {
                tokio::select! {
                    () = self.watching.beyond(self.head_seen) => {}
                    () = tokio::time::sleep(HEARTBEAT) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                    () = self.health.stopping() => return None,
                }
            }
            let page = match self.readers.feed(self.query.clone()).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(error = %error, "ending a feed stream: the database failed");
                    return None;
                }
            };
            let found = !page.entries.is_empty();
            let chunk = self.events_of(page);
            if found {
                return Some(chunk);
            }
        }
    }

    /// The events of a read; moves the stream on past it.
    fn events_of(&mut self, page: FeedPage) -> Bytes {
        let mut chunk = Vec::with_capacity(page.entries.len() * 256 + 64);
        if page.skipped_deleted(self.query.after) {
            let oldest = page.oldest.unwrap_or_default();
            chunk.extend_from_slice(
                format!("event: gap\ndata: {{\"oldest\":{oldest}}}\n\n").as_bytes(),
            );
        }
        for entry in &page.entries {
            chunk.extend_from_slice(format!("id: {}\ndata: ", entry.seq).as_bytes());
            serde_json::to_writer(&mut chunk, entry).expect("a feed entry serializes");
            chunk.extend_from_slice(b"\n\n");
        }
        self.more_now = page.entries.len() >= self.query.limit as usize;
        self.query.after = page.next_after;
        self.head_seen = self.head_seen.max(page.head);
        Bytes::from(chunk)
    }
}
