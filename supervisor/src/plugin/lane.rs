//! One plugin's requests, served one after another in the order it sent them.
//!
//! A plugin that writes `kv.set` and then `kv.get` without waiting must read what it wrote, so
//! requests from one plugin are never served concurrently: each plugin has a lane, a FIFO whose
//! head is the one request in progress. Lanes of different plugins run side by side. The lane
//! lives in the plugin's runner, which polls it in its own loop and writes each response straight
//! to the plugin, ahead of queued events, so nothing is detached and nothing waits for room.
//! A lane belongs to one process: when the plugin stops, its lane is dropped with whatever was
//! still queued, so a restarted process never receives an answer meant for its predecessor.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use hamper_protocol::{ErrorBody, ErrorCode, Outcome, Request, Response, ToPlugin};
use hamper_storage::Storage;
use tokio::sync::{mpsc, oneshot};

use super::{encode, FromRunner, Line};
use crate::host_call::{call_kv, HostCall};

/// Requests one plugin may have queued before the host stops reading its output until some are
/// answered. Each is at most one protocol line.
pub const MAX_QUEUED_REQUESTS: usize = 256;

/// The database, once it is open: PostgreSQL may come up after the bot started.
pub type StorageSlot = Arc<OnceLock<Storage>>;

/// What the router answers for a lane, since only it knows the bot and the plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterCall {
    /// `plugins.list`.
    PluginsList,
    /// `bot.info`.
    BotInfo,
}

/// What a lane needs to serve requests.
#[derive(Debug, Clone)]
pub struct Services {
    /// The plugin's index in the router's table.
    pub plugin: usize,
    /// The plugin's name: its storage namespace.
    pub name: Arc<str>,
    /// The database.
    pub storage: StorageSlot,
    /// The router, for what only it can answer.
    pub router: mpsc::Sender<FromRunner>,
}

type Serving = Pin<Box<dyn Future<Output = Response> + Send>>;

/// One plugin's queue of requests and the one being served.
pub struct Lane {
    services: Services,
    queued: VecDeque<Request>,
    serving: Option<Serving>,
}

impl Lane {
    /// An empty lane.
    pub fn new(services: Services) -> Lane {
        Lane {
            services,
            queued: VecDeque::new(),
            serving: None,
        }
    }

    /// Whether the plugin has as many requests waiting as it may.
    pub fn is_full(&self) -> bool {
        self.queued.len() + usize::from(self.serving.is_some()) >= MAX_QUEUED_REQUESTS
    }

    /// Adds a request at the back; it starts at once when the lane is idle.
    pub fn push(&mut self, request: Request) {
        if self.serving.is_none() {
            self.serving = Some(serve(self.services.clone(), request));
        } else {
            self.queued.push_back(request);
        }
    }

    /// The response to the request at the head, once it is ready; then the next one starts.
    /// Never ready while the lane is idle. Cancel-safe: the request in progress stays in the
    /// lane when the returned future is dropped.
    pub async fn next(&mut self) -> Response {
        let Some(serving) = self.serving.as_mut() else {
            return std::future::pending().await;
        };
        let response = serving.await;
        self.serving = self
            .queued
            .pop_front()
            .map(|request| serve(self.services.clone(), request));
        response
    }
}

fn serve(services: Services, request: Request) -> Serving {
    Box::pin(async move {
        let id = request.id;
        let outcome = call(&services, request).await;
        Response { id, outcome }
    })
}

async fn call(services: &Services, request: Request) -> Outcome {
    let call = match HostCall::parse(&request.method, request.params) {
        Ok(HostCall::PluginsList) => RouterCall::PluginsList,
        Ok(HostCall::BotInfo) => RouterCall::BotInfo,
        Ok(HostCall::Kv(call)) => {
            return match services.storage.get() {
                Some(storage) => call_kv(storage, &services.name, call).await,
                None => error(
                    ErrorCode::Unavailable,
                    "storage is not available yet; try again later",
                ),
            }
        }
        Err(refusal) => return Outcome::Error(refusal),
    };
    let (reply, answer) = oneshot::channel();
    let asked = services
        .router
        .send(FromRunner::Call {
            plugin: services.plugin,
            call,
            reply,
        })
        .await;
    match (asked, answer.await) {
        (Ok(()), Ok(outcome)) => outcome,
        _ => error(ErrorCode::Unavailable, "the bot is shutting down"),
    }
}

/// The response as a protocol line, encoded once. One too long for a line becomes a
/// `too_large` error: sent as it is, it would be refused by the plugin and the request would
/// never be answered.
pub fn response_line(response: Response) -> Option<Line> {
    let id = response.id;
    let line = encode(&ToPlugin::Response(response))?;
    // The limit counts the line without its newline.
    if line.len() <= hamper_protocol::MAX_LINE_BYTES + 1 {
        return Some(line);
    }
    encode(&ToPlugin::Response(Response {
        id,
        outcome: error(
            ErrorCode::TooLarge,
            &format!(
                "the result ({} bytes) does not fit in one protocol line ({} bytes)",
                line.len() - 1,
                hamper_protocol::MAX_LINE_BYTES
            ),
        ),
    }))
}

/// An error outcome.
pub fn error(code: ErrorCode, message: &str) -> Outcome {
    Outcome::Error(ErrorBody {
        code,
        message: message.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamper_protocol::RequestId;
    use serde_json::json;

    #[test]
    fn results_too_big_for_a_line_become_too_large() {
        let decode = |line: Line| -> Response {
            match serde_json::from_slice(&line).expect("a response line") {
                ToPlugin::Response(r) => r,
                other => panic!("not a response: {other:?}"),
            }
        };
        let small = Response {
            id: RequestId(1),
            outcome: Outcome::Result(json!({"value": 1})),
        };
        let line = response_line(small.clone()).expect("encoded");
        assert_eq!(decode(line), small);
        let big = Response {
            id: RequestId(2),
            outcome: Outcome::Result(json!({"help": "x".repeat(hamper_protocol::MAX_LINE_BYTES)})),
        };
        let line = response_line(big).expect("encoded");
        assert!(line.len() <= hamper_protocol::MAX_LINE_BYTES);
        let refused = decode(line);
        assert_eq!(refused.id, RequestId(2));
        let Outcome::Error(e) = refused.outcome else {
            panic!("not refused")
        };
        assert_eq!(e.code, ErrorCode::TooLarge);
    }

    fn lane(storage: StorageSlot) -> (Lane, mpsc::Receiver<FromRunner>) {
        let (router, from) = mpsc::channel(16);
        let lane = Lane::new(Services {
            plugin: 0,
            name: "p".into(),
            storage,
            router,
        });
        (lane, from)
    }

    fn request(id: u64, method: &str, params: serde_json::Value) -> Request {
        Request {
            id: RequestId(id),
            method: method.into(),
            params,
        }
    }

    #[tokio::test]
    async fn requests_are_answered_in_the_order_sent() {
        let slot = StorageSlot::default();
        let storage = Storage::open("sqlite::memory:").await.expect("open");
        assert!(slot.set(storage).is_ok());
        let (mut lane, _router) = lane(slot);
        for i in 0..50 {
            lane.push(request(
                2 * i + 1,
                "kv.set",
                json!({"key": "k", "value": i}),
            ));
            lane.push(request(2 * i + 2, "kv.get", json!({"key": "k"})));
        }
        for i in 0..50u64 {
            let set = lane.next().await;
            assert_eq!(set.id, RequestId(2 * i + 1));
            let get = lane.next().await;
            assert_eq!(get.id, RequestId(2 * i + 2));
            assert_eq!(
                get.outcome,
                Outcome::Result(json!({"value": i})),
                "get {i} sees set {i}"
            );
        }
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), lane.next())
                .await
                .is_err(),
            "an idle lane is never ready"
        );
    }

    #[tokio::test]
    async fn unknown_methods_and_missing_storage_are_answered() {
        let (mut lane, _router) = lane(StorageSlot::default());
        lane.push(request(1, "kv.get", json!({"key": "k"})));
        lane.push(request(2, "weather.now", json!({})));
        let Outcome::Error(first) = lane.next().await.outcome else {
            panic!("kv.get without storage succeeded")
        };
        assert_eq!(first.code, ErrorCode::Unavailable);
        let Outcome::Error(second) = lane.next().await.outcome else {
            panic!("an unknown method succeeded")
        };
        assert_eq!(second.code, ErrorCode::UnknownMethod);
        assert!(second.message.contains("kv.list"), "{}", second.message);
    }

    #[tokio::test]
    async fn router_calls_go_to_the_router() {
        let (mut lane, mut router) = lane(StorageSlot::default());
        lane.push(request(7, "bot.info", json!({})));
        let answer = tokio::spawn(async move {
            match router.recv().await {
                Some(FromRunner::Call { call, reply, .. }) => {
                    assert_eq!(call, RouterCall::BotInfo);
                    let _ = reply.send(Outcome::Result(json!({"nick": "hamper"})));
                }
                other => panic!("expected a call, got {other:?}"),
            }
        });
        let response = lane.next().await;
        answer.await.expect("router task");
        assert_eq!(response.id, RequestId(7));
        assert_eq!(response.outcome, Outcome::Result(json!({"nick": "hamper"})));
    }

    #[tokio::test]
    async fn a_full_lane_says_so() {
        let (mut lane, _router) = lane(StorageSlot::default());
        for i in 0..MAX_QUEUED_REQUESTS as u64 {
            assert!(!lane.is_full());
            lane.push(request(i, "bot.info", json!({})));
        }
        assert!(lane.is_full());
    }
}
