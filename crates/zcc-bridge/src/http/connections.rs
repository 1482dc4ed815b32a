//! Serving HTTP/1 connections so that hostile or broken clients cannot take the server down:
//!
//! - **Connection cap** (`server.max_connections`, lowered to fit the file-descriptor limit). When it is reached, the
//!   connection that has been idle longest (no request in flight: a keep-alive connection, or one still sending
//!   its request head) is closed to make room; if every connection is busy, the new one is closed at once. When the
//!   process runs out of file descriptors anyway, accepting pauses briefly and resumes: the connections it has are
//!   served throughout.
//! - **Idle timeout** (`server.idle_timeout_seconds`): a connection with no request in flight and no byte of a new
//!   one is closed. **Header-read timeout** (`server.header_read_timeout_seconds`): from the first byte of a request
//!   to its complete head. **Body-read timeout** (`server.body_read_timeout_seconds`): from the head to the end of
//!   the body; the request is answered 408.
//! - **Body memory**: a request body is held only as it arrives (a stalled upload holds what it has sent). Each
//!   request's first `BODY_ALLOWANCE` bytes are its own (so small requests, such as every webhook, never wait);
//!   beyond that, bytes held at once by all requests are capped by `server.body_memory_bytes`, and a request that
//!   needs more waits (reading nothing more from its socket) until others finish or its body timeout passes.
//! - **Per-address limit** on the unauthenticated endpoints (`server.max_requests_per_ip`, `per_ip_limit`): at
//!   most that many requests of one client address in flight. When an address is at its limit, its request whose
//!   body has been stalled longest (nothing for `STALL_GRACE`) is cancelled (answered 408) to make room; if none is
//!   stalled, the new request is answered 503 with `Retry-After`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;

/// Body bytes every request may hold without drawing on the shared `body_memory_bytes`: the whole of any
/// ordinary webhook. Bounded in total by the connection cap.
pub const BODY_ALLOWANCE: usize = 16 * 1024;

/// A request whose body has not advanced for this long may be cancelled to make room for another request of the
/// same address.
pub const STALL_GRACE: Duration = Duration::from_secs(1);

/// Largest request head, and read buffer, per connection (hyper's `max_buf_size`): a body arrives in frames of at
/// most this size.
const MAX_BUF_BYTES: usize = 32 * 1024;

/// File descriptors kept for everything but client connections (database, outbound HTTP, files): a quarter of
/// the limit, between 64 and 256.
fn reserved_descriptors(limit: u64) -> u64 {
    (limit / 4).clamp(64, 256)
}

/// The server's connection limits, from `[server]` and the file-descriptor limit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once (the configured cap, lowered to fit the descriptor limit).
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub body_memory_bytes: usize,
    /// 0: no limit.
    pub max_requests_per_ip: usize,
}

impl Limits {
    /// `fd_limit`: the process's soft limit on open files, if known.
    pub fn new(server: &ServerConfig, fd_limit: Option<u64>) -> Self {
        let fit = fd_limit
            .map(|limit| limit.saturating_sub(reserved_descriptors(limit)).max(16))
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Self {
            max_connections: server.max_connections.min(fit).max(1),
            idle_timeout: Duration::from_secs(server.idle_timeout_seconds),
            header_read_timeout: Duration::from_secs(server.header_read_timeout_seconds),
            body_read_timeout: Duration::from_secs(server.body_read_timeout_seconds),
            body_memory_bytes: server.body_memory_bytes,
            max_requests_per_ip: server.max_requests_per_ip,
        }
    }
}

/// Raises the soft limit on open files to the hard limit (at most 2^20) and returns the soft limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    let before = rlimit::Resource::NOFILE.get().ok();
    match rlimit::increase_nofile_limit(1 << 20) {
        Ok(now) => {
            if let Some((soft, hard)) = before {
                if now > soft {
                    tracing::info!(
                        from = soft,
                        to = now,
                        hard,
                        "raised the open-file soft limit"
                    );
                }
            }
            Some(now)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            before.map(|(soft, _)| soft)
        }
    }
}

/// State shared by the accept loop, every connection and the per-address limiter.
pub struct Shared {
    limits: Limits,
    epoch: Instant,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Arc<ConnState>>>,
    open: AtomicUsize,
    body_memory: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, Vec<Arc<RequestState>>>>,
    refused_since_log: AtomicU64,
    last_refusal_log_ms: AtomicU64,
}

impl Shared {
    pub fn new(limits: Limits) -> Arc<Self> {
        let permits = limits.body_memory_bytes.min(Semaphore::MAX_PERMITS);
        Arc::new(Self {
            limits,
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            connections: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            body_memory: Arc::new(Semaphore::new(permits)),
            per_ip: Mutex::new(HashMap::new()),
            refused_since_log: AtomicU64::new(0),
            last_refusal_log_ms: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_per_ip(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Vec<Arc<RequestState>>>> {
        self.per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes room for one more connection: closes the connection idle longest. False when all are busy.
    fn evict_idle(&self) -> bool {
        let mut connections = self.lock_connections();
        let victim = connections
            .iter()
            .filter(|(_, c)| !c.in_flight.load(Ordering::Acquire))
            .min_by_key(|(_, c)| c.idle_since_ms.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        let Some(id) = victim else {
            return false;
        };
        if let Some(conn) = connections.remove(&id) {
            conn.evicted.store(true, Ordering::Release);
            conn.changed.notify_one();
        }
        true
    }

    /// Bytes of request bodies held beyond the per-request allowances.
    pub fn body_memory_in_use(&self) -> usize {
        self.limits
            .body_memory_bytes
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.body_memory.available_permits())
    }

    /// Takes a per-address slot for `request` (see the module doc). `Err` when the address is at its limit and
    /// none of its requests is stalled.
    fn take_slot(&self, request: &Arc<RequestState>) -> Result<(), ()> {
        let limit = self.limits.max_requests_per_ip;
        if limit == 0 {
            return Ok(());
        }
        let now = self.now_ms();
        let stall = u64::try_from(STALL_GRACE.as_millis()).unwrap_or(u64::MAX);
        let mut per_ip = self.lock_per_ip();
        let held = per_ip.entry(request.ip).or_default();
        if held.len() >= limit {
            let victim = held
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    !r.body_done.load(Ordering::Acquire)
                        && now.saturating_sub(r.last_progress_ms.load(Ordering::Acquire)) >= stall
                })
                .min_by_key(|(_, r)| r.last_progress_ms.load(Ordering::Acquire))
                .map(|(i, _)| i);
            let Some(index) = victim else {
                return Err(());
            };
            let victim = held.swap_remove(index);
            victim.cancel();
            metrics::counter!("zcc_http_requests_cancelled_total", "reason" => "stalled")
                .increment(1);
        }
        held.push(request.clone());
        request.holds_slot.store(true, Ordering::Release);
        Ok(())
    }

    fn release_slot(&self, request: &Arc<RequestState>) {
        if !request.holds_slot.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut per_ip = self.lock_per_ip();
        if let Some(held) = per_ip.get_mut(&request.ip) {
            held.retain(|r| !Arc::ptr_eq(r, request));
            if held.is_empty() {
                per_ip.remove(&request.ip);
            }
        }
    }
}

/// One connection as the watchdog and the eviction see it.
struct ConnState {
    in_flight: AtomicBool,
    /// When the connection last became idle (ms since `Shared::epoch`).
    idle_since_ms: AtomicU64,
    /// When the first byte of the next request arrived while idle (0: none yet).
    head_started_ms: AtomicU64,
    evicted: AtomicBool,
    /// Wakes the connection's watchdog to look again (state changed, or evicted).
    changed: Notify,
}

impl ConnState {
    /// When the connection is due to be closed, if nothing changes first, and why.
    fn deadline(&self, shared: &Shared) -> Option<(Instant, &'static str)> {
        if self.in_flight.load(Ordering::Acquire) {
            return None;
        }
        let head = self.head_started_ms.load(Ordering::Acquire);
        if head > 0 {
            return Some((
                shared.instant(head) + shared.limits.header_read_timeout,
                "header_timeout",
            ));
        }
        Some((
            shared.instant(self.idle_since_ms.load(Ordering::Acquire)) + shared.limits.idle_timeout,
            "idle_timeout",
        ))
    }
}

/// One request in flight: its body's progress, its per-address slot and the body memory it holds.
pub struct RequestState {
    ip: IpAddr,
    last_progress_ms: AtomicU64,
    body_done: AtomicBool,
    cancelled: AtomicBool,
    holds_slot: AtomicBool,
    waker: AtomicWaker,
    memory: Mutex<Option<OwnedSemaphorePermit>>,
}

impl RequestState {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn hold(&self, permit: OwnedSemaphorePermit) {
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match memory.as_mut() {
            Some(held) => held.merge(permit),
            None => *memory = Some(permit),
        }
    }
}

/// Why a request body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body did not arrive within {0:?}")]
    Timeout(Duration),
    #[error("the request body stalled and its slot went to another request from the same address")]
    Cancelled,
    #[error("reading the request body failed: {0}")]
    Read(#[from] hyper::Error),
}

/// The status and message for a body that could not be read: 408 for a timeout or a cancelled stall, else
/// axum's own (413 over `server.max_body_bytes`, 400 for a broken body).
pub fn body_refusal(rejection: &axum::extract::rejection::BytesRejection) -> (StatusCode, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if let Some(body) = error.downcast_ref::<BodyError>() {
            if !matches!(body, BodyError::Read(_)) {
                return (StatusCode::REQUEST_TIMEOUT, body.to_string());
            }
        }
        source = error.source();
    }
    (rejection.status(), rejection.body_text())
}

/// A request body read under the body timeout, the body memory cap and cancellation.
///
/// Past the request's allowance, memory for the next frame (at most a read buffer) is reserved from the pool
/// *before* the socket is read; a request waiting for memory reads nothing and holds nothing but what it already
/// has. Of a reservation, the frame's size is kept (until the request ends) and the rest given back.
struct LimitedBody {
    inner: Incoming,
    shared: Arc<Shared>,
    state: Arc<RequestState>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    received: usize,
    /// Memory reserved for the next frame.
    reserved: Option<OwnedSemaphorePermit>,
    /// Waiting for memory: for the next frame's reservation (no frame), or for a frame already read that crossed
    /// the allowance.
    waiting: Option<(Option<Bytes>, WaitForMemory)>,
}

type WaitForMemory =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

impl LimitedBody {
    fn wait_for(&self, permits: u32) -> WaitForMemory {
        Box::pin(self.shared.body_memory.clone().acquire_many_owned(permits))
    }
}

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        this.state.waker.register(cx.waker());
        if this.state.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(BodyError::Cancelled)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            metrics::counter!("zcc_http_requests_cancelled_total", "reason" => "body_timeout")
                .increment(1);
            return Poll::Ready(Some(Err(BodyError::Timeout(this.timeout))));
        }
        if let Some((_, wait)) = &mut this.waiting {
            let Poll::Ready(granted) = wait.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            let frame = this.waiting.take().and_then(|(frame, _)| frame);
            // The pool is never closed; an error would only mean going on without the memory accounted.
            let granted = granted.ok();
            match frame {
                Some(frame) => {
                    if let Some(permit) = granted {
                        this.state.hold(permit);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                None => this.reserved = granted,
            }
        }
        if this.received >= BODY_ALLOWANCE && this.reserved.is_none() {
            let remaining = this.inner.size_hint().upper().map_or(MAX_BUF_BYTES, |n| {
                usize::try_from(n).unwrap_or(MAX_BUF_BYTES)
            });
            let want = u32::try_from(remaining.clamp(1, MAX_BUF_BYTES)).unwrap_or(u32::MAX);
            match this.shared.body_memory.clone().try_acquire_many_owned(want) {
                Ok(permit) => this.reserved = Some(permit),
                Err(_) => {
                    this.waiting = Some((None, this.wait_for(want)));
                    return self.poll_frame(cx);
                }
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                };
                this.state
                    .last_progress_ms
                    .store(this.shared.now_ms(), Ordering::Release);
                let free = BODY_ALLOWANCE.saturating_sub(this.received);
                this.received = this.received.saturating_add(frame.len());
                let mut charge = frame.len().saturating_sub(free);
                if let Some(mut reserved) = this.reserved.take() {
                    let kept = charge.min(reserved.num_permits());
                    charge -= kept;
                    if let Some(used) = reserved.split(kept).filter(|_| kept > 0) {
                        this.state.hold(used);
                    }
                    // The rest of the reservation goes back to the pool here.
                }
                if charge == 0 {
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                // A frame that crossed the allowance (read without a reservation): account for it before handing it
                // on, waiting if need be (it is at most one read buffer).
                let charge = u32::try_from(charge).unwrap_or(u32::MAX);
                match this
                    .shared
                    .body_memory
                    .clone()
                    .try_acquire_many_owned(charge)
                {
                    Ok(permit) => {
                        this.state.hold(permit);
                        Poll::Ready(Some(Ok(Frame::data(frame))))
                    }
                    Err(_) => {
                        this.waiting = Some((Some(frame), this.wait_for(charge)));
                        self.poll_frame(cx)
                    }
                }
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e)))),
            Poll::Ready(None) => {
                this.state.body_done.store(true, Ordering::Release);
                this.reserved = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Ends a request when dropped (its response fully written, or the connection gone): the connection becomes
/// idle, the per-address slot and the body memory are released.
struct InFlight {
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    request: Arc<RequestState>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.release_slot(&self.request);
        if let Ok(mut memory) = self.request.memory.lock() {
            memory.take();
        }
        self.conn
            .idle_since_ms
            .store(self.shared.now_ms(), Ordering::Release);
        self.conn.head_started_ms.store(0, Ordering::Release);
        self.conn.in_flight.store(false, Ordering::Release);
        self.conn.changed.notify_one();
    }
}

/// A response body that ends its request (`InFlight`) when it is dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The hyper service of one connection: wraps each request's body and tracks it until its response is written.
#[derive(Clone)]
struct ConnService {
    router: Router,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let shared = self.shared.clone();
        let now = shared.now_ms();
        self.conn.in_flight.store(true, Ordering::Release);
        self.conn.head_started_ms.store(0, Ordering::Release);
        self.conn.changed.notify_one();
        let (parts, body) = request.into_parts();
        let state = Arc::new(RequestState {
            ip: self.peer.ip(),
            last_progress_ms: AtomicU64::new(now),
            body_done: AtomicBool::new(body.is_end_stream()),
            cancelled: AtomicBool::new(false),
            holds_slot: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            memory: Mutex::new(None),
        });
        let timeout = shared.limits.body_read_timeout;
        let body = LimitedBody {
            inner: body,
            shared: shared.clone(),
            state: state.clone(),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            received: 0,
            reserved: None,
            waiting: None,
        };
        let mut request = Request::from_parts(parts, Body::new(body));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(state.clone());
        let in_flight = InFlight {
            shared,
            conn: self.conn.clone(),
            request: state,
        };
        let router = self.router.clone();
        Box::pin(async move {
            use tower::ServiceExt;
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A TCP stream that tells its connection when the first byte of a request arrives while it is idle.
struct WatchedStream {
    inner: TcpStream,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
}

impl tokio::io::AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let conn = &self.conn;
            if !conn.in_flight.load(Ordering::Acquire)
                && conn.head_started_ms.load(Ordering::Acquire) == 0
            {
                conn.head_started_ms
                    .store(self.shared.now_ms().max(1), Ordering::Release);
                conn.changed.notify_one();
            }
        }
        result
    }
}

impl tokio::io::AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts and serves connections on `listener` until `stop` resolves, then stops accepting, lets the requests
/// in flight finish and returns once every connection is closed. Dropping the future aborts the connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()>,
) {
    let (stopping_tx, stopping) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    let mut last_accept_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Most likely out of file descriptors: the connections already open go on being served; new
                // ones wait in the listen backlog until descriptors are free again.
                if last_accept_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, open = shared.open.load(Ordering::Relaxed),
                        "cannot accept connections; retrying shortly (serving the open ones)");
                    last_accept_warning = Some(Instant::now());
                }
                metrics::counter!("zcc_http_accept_errors_total").increment(1);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.lock_connections().len() >= shared.limits.max_connections {
            if shared.evict_idle() {
                metrics::counter!("zcc_http_connections_closed_total", "reason" => "evicted")
                    .increment(1);
            } else {
                metrics::counter!("zcc_http_connections_closed_total", "reason" => "refused")
                    .increment(1);
                drop(stream);
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnState {
            in_flight: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(shared.now_ms()),
            head_started_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        });
        shared.lock_connections().insert(id, conn.clone());
        shared.open.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("zcc_http_connections").increment(1.0);
        tasks.spawn(serve_connection(
            id,
            stream,
            peer,
            router.clone(),
            shared.clone(),
            conn,
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    mut stopping: watch::Receiver<bool>,
) {
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        shared: shared.clone(),
        conn: conn.clone(),
    });
    let service = ConnService {
        router,
        shared: shared.clone(),
        conn: conn.clone(),
        peer,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        .max_buf_size(MAX_BUF_BYTES)
        .max_header_size(MAX_BUF_BYTES);
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut shutting_down = *stopping.borrow();
    if shutting_down {
        connection.as_mut().graceful_shutdown();
    }
    let closed_by = loop {
        let deadline = conn.deadline(&shared);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break None;
            }
            () = conn.changed.notified() => {
                if conn.evicted.load(Ordering::Acquire) {
                    if !conn.in_flight.load(Ordering::Acquire) {
                        break Some("evicted");
                    }
                    // A request arrived meanwhile: it is served, and the connection counts again.
                    conn.evicted.store(false, Ordering::Release);
                    shared.lock_connections().insert(id, conn.clone());
                }
            }
            () = sleep_until(deadline.map(|(at, _)| at)) => {
                if let Some((at, reason)) = conn.deadline(&shared) {
                    if at <= Instant::now() {
                        break Some(reason);
                    }
                }
            }
            changed = stopping.changed(), if !shutting_down => {
                if changed.is_err() || *stopping.borrow() {
                    shutting_down = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    };
    if let Some(reason) = closed_by {
        metrics::counter!("zcc_http_connections_closed_total", "reason" => reason).increment(1);
    }
    shared.lock_connections().remove(&id);
    shared.open.fetch_sub(1, Ordering::AcqRel);
    metrics::gauge!("zcc_http_connections").decrement(1.0);
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Middleware for the unauthenticated endpoints: at most `server.max_requests_per_ip` requests of one client
/// address in flight (see the module doc).
pub async fn per_ip_limit(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(state) = request.extensions().get::<Arc<RequestState>>().cloned() else {
        return next.run(request).await;
    };
    if shared.take_slot(&state).is_ok() {
        return next.run(request).await;
    }
    metrics::counter!("zcc_http_requests_refused_total", "reason" => "per_ip").increment(1);
    // At most one line per 10 s (the metric counts them all): refusals come in floods.
    let refused = shared.refused_since_log.fetch_add(1, Ordering::AcqRel) + 1;
    let now = shared.now_ms();
    let last = shared.last_refusal_log_ms.load(Ordering::Acquire);
    if (last == 0 || now.saturating_sub(last) >= 10_000)
        && shared
            .last_refusal_log_ms
            .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        shared.refused_since_log.store(0, Ordering::Release);
        tracing::warn!(peer = ?state.ip, limit = shared.limits.max_requests_per_ip, refused,
            "too many requests in flight from one address; refused with 503 (count since the last such line)");
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
        axum::Json(serde_json::json!({
            "error": "too many requests from this address are in flight; retry shortly"
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_fits_the_descriptor_limit() {
        let server = ServerConfig::default();
        let cap = |limit| Limits::new(&server, limit).max_connections;
        assert_eq!(cap(None), 1024);
        assert_eq!(cap(Some(1024)), 768);
        assert_eq!(cap(Some(4096)), 1024);
        assert_eq!(cap(Some(256)), 192);
        assert_eq!(cap(Some(20)), 16);
        assert_eq!(cap(Some(1 << 20)), 1024);
    }
}
