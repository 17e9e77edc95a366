//! `Application`: builds the store, the actors and the bound HTTP server from a [`Config`].
//!
//! Tests build it on port 0 with a temporary database; `main` builds it from the environment.
//! Either way the shutdown is the same: stop accepting, let in-flight requests finish (up to
//! the shutdown timeout), commit what the store holds, return.
//!
//! A stop on a signal first turns readiness to 503 and keeps serving for the shutdown delay,
//! with `Connection: close` on every answer, so that a load balancer takes the replica out
//! before it stops accepting. A second signal cuts the delay short. The stop then ends as soon
//! as the last connection has closed.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::web::Data;
use actix_web::{App, HttpServer};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_actix_web::TracingLogger;

use crate::actors::{self, Actors, HealthHandle};
use crate::config::Config;
use crate::http::auth::ReadToken;
use crate::http::signature::WebhookVerifier;
use crate::http::stopping::{self, OpenConnections};
use crate::http::{self, openapi, request_log};
use crate::metrics::Metrics;
use crate::signing::cursor::CursorCodec;
use crate::storage::{self, StorageError};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[from] StorageError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// A bound, not yet running, server and the actors behind it.
pub struct Application {
    server: Server,
    port: u16,
    actors: Actors,
    shutdown_delay: Duration,
    signals: Option<StopSignals>,
    connections: OpenConnections,
}

impl Application {
    /// Opens the database, binds the listener and starts the actors. Runs inside an actix
    /// `System`. Everything that can fail comes before the actors start, so a failed start
    /// leaves no actor behind to be torn down half-started.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let metrics = Metrics::new();
        let storage = storage::open(&config.database_url, &config.store_settings(), &metrics)?;

        let address = format!("{}:{}", config.host, config.port);
        let listen_error = |source| StartupError::Listen {
            address: address.clone(),
            source,
        };
        let listener = TcpListener::bind(&address).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let actors = actors::spawn(storage.as_ref(), &config, &metrics);

        let verifier = Data::new(WebhookVerifier::from_config(&config));
        let read_token = Data::new(ReadToken::new(
            config.api_token.as_ref().map(|t| t.expose()),
            config.metrics_require_token,
        ));
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let document = Data::new(openapi::Served::for_config(&config, read_token.access()));
        let cursors = Data::new(CursorCodec::new(config.webhook_secret.expose()));
        let metrics = Data::new(metrics);
        let store = Data::new(actors.store.clone());
        let readers = Data::new(actors.readers.clone());
        let health = Data::new(actors.health.clone());
        let feed = Data::new(actors.feed.clone());
        let connections = OpenConnections::default();
        let tracked = connections.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(http::methods::answer_head_as_get))
                .wrap(TracingLogger::<request_log::AccessLog>::new())
                .wrap(from_fn(http::metrics::record_request))
                .wrap(from_fn(request_log::assign_request_id))
                .wrap(from_fn(stopping::close_connections_while_stopping))
                .app_data(verifier.clone())
                .app_data(read_token.clone())
                .app_data(cursors.clone())
                .app_data(document.clone())
                .app_data(metrics.clone())
                .app_data(store.clone())
                .app_data(readers.clone())
                .app_data(health.clone())
                .app_data(feed.clone())
                .configure(http::routes)
        })
        .workers(config.workers)
        .shutdown_timeout(config.shutdown_timeout_secs)
        .client_request_timeout(config.client_timeout())
        .disable_signals()
        .on_connect(move |connection, extensions| tracked.track(connection, extensions))
        .listen(listener)
        .map_err(listen_error)?
        .run();

        let signals = StopSignals::catch();
        tracing::info!(address = %address, port, "listening");
        Ok(Self {
            server,
            port,
            actors,
            shutdown_delay: config.shutdown_delay(),
            signals,
            connections,
        })
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (by [`Application::handle`], at once, or by SIGTERM/SIGINT, after
    /// the shutdown delay), then drains the store so every acknowledged message is committed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = Stop {
            handle: self.server.handle(),
            health: self.actors.health.clone(),
            delay: self.shutdown_delay,
            connections: self.connections,
        };
        let signals = self.signals;
        let stopped_on_signal = async move {
            match signals {
                Some(signals) => stop.on_signal(signals).await,
                None => std::future::pending().await,
            }
        };
        let served = tokio::select! {
            served = self.server => served,
            // Every connection has closed: dropping the server ends its workers now rather than
            // at their next look, up to a second later.
            () = stopped_on_signal => Ok(()),
        };
        self.actors.drain().await;
        tracing::info!("stopped");
        served
    }
}

/// SIGTERM and SIGINT, caught from the moment the application is built: a signal sent as soon
/// as the port is open stops the service gracefully instead of killing it.
struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    /// Catches both signals; `None`, logged, when the process cannot.
    fn catch() -> Option<Self> {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some(Self { term, int }),
            _ => {
                tracing::error!("cannot listen for stop signals");
                None
            }
        }
    }

    /// The name of the next signal to arrive.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// How a signal stops the server.
struct Stop {
    handle: ServerHandle,
    health: HealthHandle,
    delay: Duration,
    connections: OpenConnections,
}

impl Stop {
    /// On the first SIGTERM or SIGINT: not ready at once, serving on for the delay (or until a
    /// second signal), then a graceful stop of the server. Resolves once no connection is left.
    async fn on_signal(self, mut signals: StopSignals) {
        let first = signals.next().await;
        self.health.begin_stopping();
        if !self.delay.is_zero() {
            tracing::info!(
                signal = first,
                delay_secs = self.delay.as_secs(),
                "not ready; serving until the shutdown delay is over"
            );
            tokio::select! {
                () = tokio::time::sleep(self.delay) => {}
                second = signals.next() => {
                    tracing::info!(signal = second, "second signal; no more delay");
                }
            }
        }
        tracing::info!(signal = first, "stopping");
        // Closes the listener and asks the workers to stop once their connections are done;
        // the server resolves when they have (or at the shutdown timeout).
        drop(self.handle.stop(true));
        self.connections.none_left().await;
    }
}
