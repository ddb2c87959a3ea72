//! The byte stream under one connection: a plain `TcpStream`, or TLS over one. The client reads
//! and writes it through `AsyncRead`/`AsyncWrite`; a plain stream is matched once per call and
//! otherwise used exactly as before (no allocation, no copy, no extra syscall). The TLS stream
//! is boxed: it is large (rustls's buffers), and boxing keeps a plain connection small.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// One connection's stream.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// False when the peer has closed an idle connection or sent something unasked. On TLS the
    /// socket cannot be peeked (a byte of a record is not a byte of an answer): the stream is
    /// polled once without waiting, which also takes in what a server sends unasked and
    /// harmless (TLS 1.3 session tickets, which then serve later connections' resumption).
    pub fn still_open(&mut self) -> bool {
        match self {
            Stream::Plain(s) => {
                let mut probe = [0u8; 1];
                match s.try_read(&mut probe) {
                    Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                    // 0: closed by the peer; 1: bytes nobody asked for — neither can carry a
                    // request.
                    Ok(_) => false,
                }
            }
            Stream::Tls(s) => {
                let mut probe = [0u8; 1];
                let mut buf = ReadBuf::new(&mut probe);
                let mut cx = Context::from_waker(Waker::noop());
                // Pending: nothing to read, still open. Ready: closed, an error, or data.
                Pin::new(s.as_mut())
                    .poll_read(&mut cx, &mut buf)
                    .is_pending()
            }
        }
    }

    /// Forgets a stale read readiness of a plain socket known to be empty (see the client's
    /// round trip); nothing on TLS, where rustls may hold decrypted bytes the socket no longer
    /// shows.
    pub fn forget_readiness(&self) {
        if let Stream::Plain(s) = self {
            let _ = s.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// Writes a whole request. TLS may keep encrypted bytes in rustls when the socket is full:
    /// they are flushed before the answer is awaited. A plain write is one `write_all`.
    pub async fn send(&mut self, req: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(req).await,
            Stream::Tls(s) => {
                s.write_all(req).await?;
                s.flush().await
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
