//! Free loopback ports for tests that must name one before a process binds it.

/// A loopback port nobody listens on now: bound by the kernel's choice, then released (another
/// process could take it in between; tests bind port 0 wherever the program allows).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}
