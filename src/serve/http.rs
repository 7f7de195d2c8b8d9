//! One request to `lenet5 serve`, as HTTP: the [`guard`](super::guard), the route, the body read within its
//! bounds (bytes and seconds, never a buffer of the size a client declares), the image prepared and
//! classified on one of [`DECODERS`] blocking threads, and a panic answered with a 500. Every refusal and
//! error is JSON `{"error": ...}`, and the server goes on.

use super::api::{self, PAGE, SAMPLE_PNG, Served};
use super::guard::{self, Guard, Refusal};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The largest request body accepted (413 above it): a photo of a digit is far smaller.
pub const MAX_BODY: usize = 4 << 20;
/// Images prepared and classified at once, each within the image budget
/// ([`MAX_DECODED_BYTES`](lenet5_core::data::image::MAX_DECODED_BYTES) decoded, 4 bytes a pixel prepared):
/// however many requests come, decoding holds a few hundred MB at most; the others wait their turn.
pub const DECODERS: usize = 2;
/// Request bodies read at once (each at most [`MAX_BODY`]); further uploads wait, then get a 503.
pub const BODIES: usize = 16;
/// For tests of the server's recovery: when set, a `/api/predict` body equal to this variable's value
/// panics where decoding starts (a stand-in for LibTorch failing an allocation under a memory limit).
pub const PANIC_VAR: &str = "LENET5_SERVE_TEST_PANIC_BODY";

/// What every request reads: the runs, their `/api/runs` answer (made once), the guard and the bounds.
pub struct State {
    pub runs: Vec<Served>,
    runs_json: Bytes,
    pub guard: Guard,
    /// For a request's headers, its body, and each write of the answer.
    pub timeout: Duration,
    bodies: Arc<Semaphore>,
    decoders: Arc<Semaphore>,
    panic_body: Option<Vec<u8>>,
}

impl State {
    pub fn new(runs: Vec<Served>, guard: Guard, timeout: Duration) -> State {
        let runs_json = Bytes::from(api::runs_json(&runs).to_string());
        State {
            runs,
            runs_json,
            guard,
            timeout,
            bodies: Arc::new(Semaphore::new(BODIES)),
            decoders: Arc::new(Semaphore::new(DECODERS)),
            panic_body: std::env::var_os(PANIC_VAR).map(|v| v.into_encoded_bytes()),
        }
    }
}

/// An answer, its body in memory.
pub type Answer = Response<Full<Bytes>>;

/// Answers one request in a task of its own, so that a panic anywhere in it becomes a JSON 500 on this
/// connection instead of a dropped one.
pub async fn handle(request: Request<Incoming>, state: Arc<State>) -> Answer {
    tokio::spawn(route(request, state))
        .await
        .unwrap_or_else(|_| internal_error())
}

async fn route(request: Request<Incoming>, state: Arc<State>) -> Answer {
    let (parts, body) = request.into_parts();
    if let Err((status, message)) = state.guard.check(&parts.headers) {
        return error(status, &message);
    }
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&Method::GET, "/" | "/index.html") => bytes(
            200,
            "text/html; charset=utf-8",
            Bytes::from_static(PAGE.as_bytes()),
        ),
        (&Method::GET, "/sample.png") => bytes(200, "image/png", Bytes::from_static(SAMPLE_PNG)),
        (&Method::GET, "/api/runs") => bytes(200, "application/json", state.runs_json.clone()),
        (&Method::GET, _) if mistakes_of(path, &state.runs).is_some() => {
            let png = mistakes_of(path, &state.runs).expect("matched");
            bytes(200, "image/png", Bytes::from(png.to_vec()))
        }
        (&Method::POST, "/api/predict") => predict(&parts.headers, body, &state)
            .await
            .unwrap_or_else(|(status, message)| error(status, &message)),
        (method, "/" | "/index.html" | "/sample.png" | "/api/runs" | "/api/predict") => {
            error(405, &format!("{method} is not allowed on {path}"))
        }
        _ => error(404, &format!("no such page: {path}")),
    }
}

/// The mistakes grid `/api/runs/N/mistakes.png` names, when run N has one.
fn mistakes_of<'r>(path: &str, runs: &'r [Served]) -> Option<&'r [u8]> {
    let n: usize = path
        .strip_prefix("/api/runs/")?
        .strip_suffix("/mistakes.png")?
        .parse()
        .ok()?;
    runs.get(n)?.mistakes.as_deref()
}

/// `POST /api/predict`: an image's bytes in, `predict`'s answer for each run out.
async fn predict(
    headers: &hyper::HeaderMap,
    body: Incoming,
    state: &Arc<State>,
) -> Result<Answer, Refusal> {
    guard::image_content_type(headers)?;
    // The body's permit is held until its decoding ends, so at most BODIES bodies are in memory at once,
    // waiting or decoding; a body that waits past the timeout for a decoder is refused.
    let (body, reading) = read_body(body, state).await?;
    let decoding = permit(&state.decoders, state.timeout, "images decoding").await?;
    let state = Arc::clone(state);
    let answer = tokio::task::spawn_blocking(move || {
        let _permits = (reading, decoding);
        if state.panic_body.as_deref() == Some(&body[..]) {
            panic!("a panic asked for by {PANIC_VAR}");
        }
        api::predict(&state.runs, &body)
    })
    .await;
    match answer {
        Ok(Ok(value)) => Ok(json_answer(200, &value)),
        Ok(Err(message)) => Err((400, message)),
        Err(_panicked) => Ok(internal_error()),
    }
}

/// The request body, at most [`MAX_BODY`] bytes, within the timeout: 413 when a declared or a sent length is
/// over it (a declared one is refused unread), 408 when it does not arrive, 400 when empty or unreadable.
async fn read_body(
    body: Incoming,
    state: &State,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), Refusal> {
    let too_large = || {
        (
            413,
            format!("the image is larger than {} MiB", MAX_BODY >> 20),
        )
    };
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    let reading = permit(&state.bodies, state.timeout, "uploads at once").await?;
    let seconds = state.timeout.as_secs();
    let collected = tokio::time::timeout(state.timeout, Limited::new(body, MAX_BODY).collect())
        .await
        .map_err(|_| {
            (
                408,
                format!("the request body did not arrive within {seconds} s"),
            )
        })?
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                too_large()
            } else {
                (400, format!("cannot read the request body ({e})"))
            }
        })?;
    let body = collected.to_bytes();
    if body.is_empty() {
        return Err((400, "empty body: send a PNG or JPEG image".into()));
    }
    Ok((body, reading))
}

/// One of `semaphore`'s permits, waited for at most `timeout`; a 503 naming `what` is busy otherwise.
async fn permit(
    semaphore: &Arc<Semaphore>,
    timeout: Duration,
    what: &str,
) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
    tokio::time::timeout(timeout, Arc::clone(semaphore).acquire_owned())
        .await
        .map_err(|_| {
            let seconds = timeout.as_secs();
            (503, format!("too many {what} for {seconds} s: try again"))
        })
        .map(|p| p.expect("the semaphore is never closed"))
}

fn bytes(status: u16, content_type: &str, body: Bytes) -> Answer {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        content_type.parse().expect("a valid header value"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if status >= 400 {
        // A refused request's body may be unread (or endless): close rather than drain it.
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    answer
}

fn json_answer(status: u16, value: &serde_json::Value) -> Answer {
    bytes(status, "application/json", Bytes::from(value.to_string()))
}

/// A refusal or failure as JSON `{"error": message}`.
pub fn error(status: u16, message: &str) -> Answer {
    json_answer(status, &json!({ "error": message }))
}

fn internal_error() -> Answer {
    error(
        500,
        "internal error while answering this request (the server's log says more); the server goes on",
    )
}
