//! A fault-injecting TCP proxy on loopback: forwards to a real server and cuts the first
//! connection that carries more than a given number of bytes from the server, once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct CuttingProxy {
    pub port: u16,
    pub cut: Arc<AtomicBool>,
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
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
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
                });
            }
        });
        CuttingProxy { port, cut }
    }
}
