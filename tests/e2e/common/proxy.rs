//! A fault-injecting TCP proxy on loopback: forwards to a real server and cuts the first
//! connection that carries more than a given number of bytes from the server, once.
//! It also counts the connections it accepted and the most that were open at once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct CuttingProxy {
    pub port: u16,
    pub cut: Arc<AtomicBool>,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// The most connections open at the same time so far.
    pub max_open: Arc<AtomicUsize>,
}

impl CuttingProxy {
    /// A proxy in front of the server of `url` (`scheme://user:pw@IP:port/db`) and the
    /// same URL pointing at the proxy.
    pub fn in_front_of(url: &str, cut_after_bytes: u64) -> (CuttingProxy, String) {
        let (host_port, _) = url
            .split_once('@')
            .and_then(|(_, rest)| rest.split_once('/'))
            .expect("URL has user@host:port/db");
        let target: SocketAddr = host_port.parse().expect("the test URL uses an IP:port");
        let proxy = CuttingProxy::start(target, cut_after_bytes);
        let through = url.replace(host_port, &format!("127.0.0.1:{}", proxy.port));
        (proxy, through)
    }

    pub fn start(target: SocketAddr, cut_after_bytes: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_flag = Arc::clone(&cut);
        let accepted = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (accepted_c, max_open_c) = (Arc::clone(&accepted), Arc::clone(&max_open));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                accepted_c.fetch_add(1, Ordering::SeqCst);
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                max_open_c.fetch_max(now, Ordering::SeqCst);
                let open = Arc::clone(&open);
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(Shutdown::Write);
                });
                let cut_flag = Arc::clone(&cut_flag);
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    let mut total = 0u64;
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        total += n as u64;
                        if total > cut_after_bytes && !cut_flag.swap(true, Ordering::SeqCst) {
                            let _ = c_write.shutdown(Shutdown::Both);
                            let _ = s_read.shutdown(Shutdown::Both);
                            break;
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(Shutdown::Write);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CuttingProxy {
            port,
            cut,
            accepted,
            max_open,
        }
    }
}

/// An HTTP-level fault injector on loopback: the first `fail_503` connections are
/// answered `503 Slow Down` after their request headers, the next `resets` are closed
/// without an answer (a connection reset), and every later one is forwarded to
/// `target`. Counts connections in `seen`.
pub struct FaultyHttpProxy {
    pub port: u16,
    pub seen: Arc<std::sync::atomic::AtomicUsize>,
}

impl FaultyHttpProxy {
    pub fn start(target: SocketAddr, fail_503: usize, resets: usize) -> FaultyHttpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n < fail_503 + resets {
                    std::thread::spawn(move || {
                        // Read the request head, then fail it.
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") {
                            match client.read(&mut byte) {
                                Ok(1) => head.push(byte[0]),
                                _ => break,
                            }
                        }
                        if n < fail_503 {
                            let body = "<Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>";
                            let _ = write!(
                                client,
                                "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                        }
                        let _ = client.shutdown(Shutdown::Both);
                    });
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(Shutdown::Write);
                });
            }
        });
        FaultyHttpProxy { port, seen }
    }
}
