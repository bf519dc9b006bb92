//! A TCP relay on loopback between a client and the server, which the test can cut the way
//! a tunnel or a dead mobile network does: from then on nothing passes either way, and
//! neither end hears of it (no FIN, no RST); both sockets stay open until the relay is
//! dropped. Connections made after a cut pass normally.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    cuts: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// Relays every connection to `target`.
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let (cuts, _) = watch::channel(0u64);
        let watch = cuts.clone();
        let accept = tokio::spawn(async move {
            // Owned here, so dropping the relay (aborting this task) closes every socket.
            let mut pairs = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let cut = watch.subscribe();
                let generation = *cut.borrow();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                pairs.spawn(pump(client_read, server_write, cut.clone(), generation));
                pairs.spawn(pump(server_read, client_write, cut, generation));
            }
        });
        Relay { addr, cuts, accept }
    }

    /// Every connection open now stops passing anything, silently.
    pub fn cut(&self) {
        self.cuts.send_modify(|generation| *generation += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies one direction until end of file, or holds both sockets silent once cut.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut cut: watch::Receiver<u64>,
    generation: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            _ = cut.wait_for(|g| *g > generation) => None,
            read = from.read(&mut buf) => Some(read),
        };
        match read {
            // Keep `from` and `to` open, pass nothing: a dead path, not a closed one.
            None => std::future::pending::<()>().await,
            Some(read) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}
