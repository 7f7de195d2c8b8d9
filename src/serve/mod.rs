//! `lenet5 serve`: a local web page to draw a digit and watch each trained net's layers, and the JSON API it
//! uses ([`api`]). hyper over a small tokio runtime: a connection waits without holding a thread, so idle or
//! slow clients stall nobody; each carries one request, its head read and bounded in bytes and time first
//! ([`head`]), then its body and decoding bounded ([`http`]), [`guard`] saying who may ask. Ctrl-C or
//! SIGTERM stops it within a second, whatever clients do.

pub mod api;
pub mod guard;
pub mod head;
pub mod http;

use anyhow::{Context, Result};
use api::Served;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lenet5_lab::sys::interrupt::Interrupt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_io_timeout::TimeoutWriter;

pub use head::MAX_HEAD;
/// After Ctrl-C, how long requests in hand may take to finish before the server stops anyway.
const GRACE: Duration = Duration::from_millis(200);
/// How often the signal flags are looked at.
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// Where to listen, and for how long a client may take.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    /// 0: any free port (printed).
    pub port: u16,
    /// For a request's headers, then its body, then each write of the answer; a slower client is dropped.
    pub timeout: Duration,
}

/// Serves `runs` until Ctrl-C or SIGTERM; prints the URL first (with the port chosen when `port` is 0), and
/// a warning when the address is not a loopback one.
pub fn serve(runs: Vec<Served>, opts: &Options) -> Result<()> {
    let listener = std::net::TcpListener::bind((opts.host.as_str(), opts.port))
        .with_context(|| format!("cannot listen on {}:{}", opts.host, opts.port))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    let host = if opts.host.contains(':') {
        format!("[{}]", opts.host)
    } else {
        opts.host.clone()
    };
    println!(
        "serving {} at http://{host}:{}/",
        names.join(", "),
        bound.port()
    );
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: --host {} is not a loopback address: anyone who can reach this machine can use the \
             page and read /api/runs, which lists the runs' absolute paths",
            opts.host
        );
    }
    eprintln!("press Ctrl-C to stop");
    let interrupt = Interrupt::install().context("cannot install the Ctrl-C handler")?;
    let state = Arc::new(http::State::new(
        runs,
        guard::Guard::new(&opts.host, bound),
        opts.timeout,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(http::DECODERS)
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the server's runtime")?;
    runtime.block_on(accept_until_stopped(listener, state, &interrupt))?;
    // A decode still running is not waited for: it holds no file, and its client is gone.
    runtime.shutdown_background();
    eprintln!("stopped");
    Ok(())
}

/// Accepts connections until a signal, then gives the requests in hand [`GRACE`] to finish.
async fn accept_until_stopped(
    listener: std::net::TcpListener,
    state: Arc<http::State>,
    interrupt: &Interrupt,
) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => serve_connection(stream, &state, &graceful),
                Err(e) => {
                    // Out of file descriptors, say: the connections in hand go on; try again shortly.
                    eprintln!("warning: cannot accept a connection ({e})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = stopped(interrupt) => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
    Ok(())
}

/// Resolves once Ctrl-C or SIGTERM has come.
async fn stopped(interrupt: &Interrupt) {
    while interrupt.requested().is_none() {
        tokio::time::sleep(SIGNAL_POLL).await;
    }
}

/// One connection as a task, one request on it: its head read within [`MAX_HEAD`] bytes and the timeout
/// ([`head`]; refused there in JSON), then handed to hyper with the head replayed; each write of the answer
/// within the timeout (a client that stops reading is dropped). No keep-alive: every request's head passes
/// [`head::read`], which hyper cannot be told to call between requests.
fn serve_connection(
    mut stream: tokio::net::TcpStream,
    state: &Arc<http::State>,
    graceful: &GracefulShutdown,
) {
    let (state, watcher) = (Arc::clone(state), graceful.watcher());
    tokio::spawn(async move {
        let timeout = state.timeout;
        let head = match head::read(&mut stream, timeout).await {
            head::Head::Complete(bytes) => bytes,
            head::Head::Refused(status, message) => {
                return head::refuse(stream, status, &message, timeout).await;
            }
            head::Head::Gone => return,
        };
        let (read, write) = stream.into_split();
        let mut write = TimeoutWriter::new(write);
        write.set_timeout(Some(timeout));
        let replayed = std::io::Cursor::new(head).chain(read);
        let io = TokioIo::new(Box::pin(tokio::io::join(replayed, write)));
        let service = hyper::service::service_fn(move |request| {
            let state = Arc::clone(&state);
            async move { Ok::<_, std::convert::Infallible>(http::handle(request, state).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .max_buf_size(MAX_HEAD + 8192)
            .keep_alive(false)
            .serve_connection(io, service);
        // A connection's end (closed, timed out, malformed) concerns only that client.
        let _ = watcher.watch(connection).await;
    });
}
