//! The messages OS nodes exchange over URPC, one slot each.

use atoll_urpc::{PAYLOAD_SIZE, Payload};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMessage {
    /// Answer with a `Pong` carrying the same token.
    Ping {
        token: u64,
    },
    Pong {
        token: u64,
    },
    /// From the shell's core: measure `rounds` URPC round trips to `peer`
    /// and send back a `PingReport`.
    PingPeer {
        peer: u32,
        rounds: u32,
    },
    PingReport {
        peer: u32,
        median: u64,
        min: u64,
        max: u64,
    },
    /// From the shell's core: run every `urpc bench` measurement against
    /// `peer` and send back a `BenchReport`.
    BenchPeer {
        peer: u32,
    },
    BenchReport(BenchReport),
    /// One message of a throughput stream of `total`.
    Stream {
        index: u32,
        total: u32,
    },
    /// The receiver of a stream got all of it.
    StreamDone {
        received: u32,
    },
    /// Join a ping-pong of `rounds` on the spare line of the ring from the
    /// sender to this core.
    SharedLine {
        rounds: u32,
    },
    /// A request could not be carried out.
    Refused {
        reason: Refusal,
    },
}

/// Medians, in TSC cycles, of one ordered pair's measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchReport {
    pub peer: u32,
    pub urpc_round_trip: u64,
    pub ipi_round_trip: u64,
    pub shared_line_round_trip: u64,
    /// Cycles per message, streaming one way.
    pub stream_per_message: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PeerNotRunning = 1,
    NoAnswer = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: u8,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown or malformed node message (kind {})", self.kind)
    }
}

/// Little-endian fields after the kind byte.
struct Writer {
    payload: Payload,
    at: usize,
}

impl Writer {
    fn new(kind: u8) -> Self {
        let mut payload = [0; PAYLOAD_SIZE];
        payload[0] = kind;
        Self { payload, at: 8 }
    }

    fn u32(mut self, value: u32) -> Self {
        self.payload[self.at..self.at + 4].copy_from_slice(&value.to_le_bytes());
        self.at += 4;
        self
    }

    fn u64(mut self, value: u64) -> Self {
        self.at = self.at.next_multiple_of(8);
        self.payload[self.at..self.at + 8].copy_from_slice(&value.to_le_bytes());
        self.at += 8;
        self
    }
}

struct Reader<'p> {
    payload: &'p Payload,
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> u32 {
        let value = u32::from_le_bytes(
            self.payload[self.at..self.at + 4]
                .try_into()
                .unwrap_or_default(),
        );
        self.at += 4;
        value
    }

    fn u64(&mut self) -> u64 {
        self.at = self.at.next_multiple_of(8);
        let value = u64::from_le_bytes(
            self.payload[self.at..self.at + 8]
                .try_into()
                .unwrap_or_default(),
        );
        self.at += 8;
        value
    }
}

impl NodeMessage {
    pub fn encode(&self) -> Payload {
        match *self {
            Self::Ping { token } => Writer::new(1).u64(token),
            Self::Pong { token } => Writer::new(2).u64(token),
            Self::PingPeer { peer, rounds } => Writer::new(3).u32(peer).u32(rounds),
            Self::PingReport {
                peer,
                median,
                min,
                max,
            } => Writer::new(4).u32(peer).u64(median).u64(min).u64(max),
            Self::BenchPeer { peer } => Writer::new(5).u32(peer),
            Self::BenchReport(report) => Writer::new(6)
                .u32(report.peer)
                .u64(report.urpc_round_trip)
                .u64(report.ipi_round_trip)
                .u64(report.shared_line_round_trip)
                .u64(report.stream_per_message),
            Self::Stream { index, total } => Writer::new(7).u32(index).u32(total),
            Self::StreamDone { received } => Writer::new(8).u32(received),
            Self::SharedLine { rounds } => Writer::new(9).u32(rounds),
            Self::Refused { reason } => Writer::new(10).u32(reason as u32),
        }
        .payload
    }

    pub fn decode(payload: &Payload) -> Result<Self, DecodeError> {
        let kind = payload[0];
        let mut fields = Reader { payload, at: 8 };
        Ok(match kind {
            1 => Self::Ping {
                token: fields.u64(),
            },
            2 => Self::Pong {
                token: fields.u64(),
            },
            3 => Self::PingPeer {
                peer: fields.u32(),
                rounds: fields.u32(),
            },
            4 => Self::PingReport {
                peer: fields.u32(),
                median: fields.u64(),
                min: fields.u64(),
                max: fields.u64(),
            },
            5 => Self::BenchPeer { peer: fields.u32() },
            6 => Self::BenchReport(BenchReport {
                peer: fields.u32(),
                urpc_round_trip: fields.u64(),
                ipi_round_trip: fields.u64(),
                shared_line_round_trip: fields.u64(),
                stream_per_message: fields.u64(),
            }),
            7 => Self::Stream {
                index: fields.u32(),
                total: fields.u32(),
            },
            8 => Self::StreamDone {
                received: fields.u32(),
            },
            9 => Self::SharedLine {
                rounds: fields.u32(),
            },
            10 => match fields.u32() {
                1 => Self::Refused {
                    reason: Refusal::PeerNotRunning,
                },
                2 => Self::Refused {
                    reason: Refusal::NoAnswer,
                },
                _ => return Err(DecodeError { kind }),
            },
            _ => return Err(DecodeError { kind }),
        })
    }
}
