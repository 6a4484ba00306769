//! Reconnect reasons (client-spec §3.9): why the last connection ended, sent in the next
//! handshake's convey and in the metadata of the connection that follows.

/// The longest cloud-disconnect reason kept (only `[A-Za-z0-9 ]` is accepted, like parodus).
pub const MAX_DISCONNECT_REASON: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconnectReason {
    /// `webpa_process_starts`: the first connect, and again after every successful one.
    ProcessStarts,
    /// `Ping_Miss`: nothing arrived within the ping timeout.
    PingMiss,
    /// `SSL_Socket_Close`: the connection ended without a close frame (1006).
    SocketClosed,
    /// `Unknown`: the server closed with a close frame.
    Unknown,
    /// The reason given by a cloud-disconnect request (§6.3).
    CloudDisconnect(heapless::String<MAX_DISCONNECT_REASON>),
}

impl ReconnectReason {
    pub fn as_str(&self) -> &str {
        match self {
            ReconnectReason::ProcessStarts => "webpa_process_starts",
            ReconnectReason::PingMiss => "Ping_Miss",
            ReconnectReason::SocketClosed => "SSL_Socket_Close",
            ReconnectReason::Unknown => "Unknown",
            ReconnectReason::CloudDisconnect(reason) => reason,
        }
    }

    /// A cloud-disconnect reason, if it is 1..=64 letters, digits and spaces.
    pub fn cloud_disconnect(reason: &str) -> Option<Self> {
        if reason.is_empty()
            || !reason
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        {
            return None;
        }
        let mut s = heapless::String::new();
        s.push_str(reason).ok()?;
        Some(ReconnectReason::CloudDisconnect(s))
    }
}
