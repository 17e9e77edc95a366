//! A commit whose outcome the service cannot know (the connection to PostgreSQL dropped while
//! `COMMIT` was on its way or its answer was) is never answered 200: the sender gets 503 with
//! `Retry-After` and redelivers, which stores the message once whichever way the commit went.
//! Then the service goes on by itself on a new connection.

use std::time::Duration;

use crate::postgres;
use crate::postgres_proxy::{CommitCutter, Cut};
use crate::store::{Store, TestDatabase};
use crate::support::{
    assert_postgres_aggregates_exact, assert_taken, assert_well_formed_503, body, client,
    post_signed, start, wait_for_readiness,
};

/// A statement only the writer's batches send.
const BATCH_MARKER: &str = "INSERT INTO messages";

/// How many rows hold `id`, read beside the service.
fn rows_of(database: &TestDatabase, id: &str) -> usize {
    database
        .postgres()
        .psql(&format!(
            "SELECT count(*) FROM messages WHERE message_id = '{id}'"
        ))
        .expect("the database answers")
        .parse()
        .expect("a count")
}

#[actix_web::test]
async fn a_commit_cut_off_either_side_of_the_server_is_503_and_its_redelivery_is_stored_once() {
    if !Store::Postgres.runs_here() {
        return;
    }
    let database = TestDatabase::new(Store::Postgres);
    let Some(server_port) = database.postgres().local_port() else {
        postgres::skip(
            "a commit cut off",
            "the proxy runs only in front of a server started here",
        );
        return;
    };
    let proxy = CommitCutter::start(server_port, BATCH_MARKER);
    let url = database
        .postgres()
        .url_through(proxy.port())
        .expect("a server started here")
        + "?sslmode=disable";
    let service = start(&database, &[("DATABASE_URL", &url), ("READERS", "1")]);
    let client = client();
    assert_taken(&client, &service, "first", 16).await;

    // (where the cut lands, the id, whether the server committed it)
    let cases = [
        (Cut::AfterCommit, "committed-unknown", 1),
        (Cut::BeforeCommit, "never-committed", 0),
    ];
    for (cut, id, rows_after_cut) in cases {
        let connections = proxy.connections();
        proxy.arm(cut);
        let answer = post_signed(&client, &service, body(id, 16)).await.unwrap();

        assert_eq!(
            proxy.cuts(),
            1 + usize::from(cut == Cut::BeforeCommit),
            "{cut:?}"
        );
        assert_well_formed_503(&answer);
        assert_eq!(rows_of(&database, id), rows_after_cut, "{cut:?}: stored?");

        let redelivered = post_signed(&client, &service, body(id, 16)).await.unwrap();
        assert_eq!(
            redelivered.status, 200,
            "{cut:?}: redelivery: {redelivered:?}"
        );
        assert_eq!(rows_of(&database, id), 1, "{cut:?}: stored once");
        wait_for_readiness(&client, &service, 200, Duration::from_secs(5))
            .await
            .expect("ready again by itself");
        assert!(
            proxy.connections() > connections,
            "{cut:?}: the service connected again"
        );
    }

    assert_taken(&client, &service, "last", 16).await;
    assert_eq!(assert_postgres_aggregates_exact(database.postgres()), 4);
}
