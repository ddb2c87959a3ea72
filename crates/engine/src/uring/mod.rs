//! The io_uring backend of the engine, for plain HTTP/1.1: the same event loop, pool, schedule
//! and accounting as the epoll backend, with the requests' I/O as operations on one ring per
//! engine thread ([`ring`]) and the connections in [`conn`]. The loop waits in the ring
//! ([`Ring::park`]) instead of in tokio's reactor: one kernel entry submits every send of a
//! tick and waits for answers, with the next wake-up as its timeout. TLS and HTTP/2 stay on
//! epoll (their streams are rustls's and h2's, driven through tokio's `AsyncRead`/`AsyncWrite`).

pub mod conn;
pub mod ring;

pub use conn::{exchange, Connection};
pub use ring::{Refused, Ring};
