//! /health/live and /health/ready, including readiness following the database file.

use serde_json::Value;

use crate::helpers::spawn_app;
use crate::store::{Store, store_tests};

store_tests! {
    async liveness_and_readiness_answer_200_on_a_healthy_service,
}

async fn liveness_and_readiness_answer_200_on_a_healthy_service(store: Store) {
    let app = spawn_app(store).await;
    assert_eq!(app.get("/health/live").await.status().as_u16(), 200);
    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
}

#[actix_web::test]
async fn readiness_turns_503_within_two_seconds_when_the_sqlite_file_goes_and_recovers() {
    let app = spawn_app(Store::Sqlite).await;
    let db = app.database.sqlite_path();
    let aside = db.with_extension("moved");

    std::fs::rename(&db, &aside).unwrap();
    assert!(
        app.wait_for_readiness(503, 2).await,
        "not ready within 2 s of the file going"
    );
    let (_, body) = app.get_json("/health/ready").await;
    assert_eq!(body["detail"], Value::from("database file is missing"));
    assert_eq!(
        app.get("/health/live").await.status().as_u16(),
        200,
        "still alive"
    );

    std::fs::rename(&aside, &db).unwrap();
    assert!(
        app.wait_for_readiness(200, 2).await,
        "ready again once the file is back"
    );
}

#[actix_web::test]
async fn readiness_turns_503_when_another_sqlite_file_is_put_in_place_and_recovers_when_it_goes() {
    let app = spawn_app(Store::Sqlite).await;
    let db = app.database.sqlite_path();
    let aside = db.with_extension("moved");
    std::fs::rename(&db, &aside).unwrap();
    std::fs::write(&db, vec![b'x'; 8192]).unwrap();

    assert!(app.wait_for_readiness(503, 2).await);
    let (_, body) = app.get_json("/health/ready").await;
    assert_eq!(
        body["detail"],
        Value::from(
            "database file was replaced while in use; restart the service to use the new file"
        )
    );

    std::fs::rename(&aside, &db).unwrap();
    assert!(app.wait_for_readiness(200, 2).await);
}
