//! Wire encodings of the message bodies (the frame prefix and tag are in `frame.rs`).

use bytes::{Buf, BufMut};

use crate::coding::{
    get_addr, get_list, get_string, get_u16, get_u32, get_u8, put_addr, put_list, put_str, Decode,
    Encode,
};
use crate::wire_vhost::{get_vhost, put_vhost};
use crate::{
    AddProxies, AddResults, CodecError, DataHeader, GoingAway, Hello, ProxiesClosed, ProxyClosed,
    ProxyId, ProxyKind, ProxyName, ProxyOutcome, ProxyResult, ProxySpec, RemoveProxies, VhostSpec,
    Welcome, MAX_NAME_LEN, MAX_TEXT_LEN,
};

const KIND_TCP: u8 = 1;
const KIND_HTTP: u8 = 2;
const KIND_HTTPS: u8 = 3;
const OUTCOME_BOUND: u8 = 0;
const OUTCOME_REFUSED: u8 = 1;

impl Decode for ProxyName {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self::new(get_string(buf, "proxy name", MAX_NAME_LEN)?)?)
    }
}

impl Encode for ProxyName {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_str(buf, self.as_str(), "proxy name", MAX_NAME_LEN)
    }
}

impl Decode for ProxyKind {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        match get_u8(buf, "proxy kind")? {
            KIND_TCP => Ok(Self::Tcp),
            KIND_HTTP => Ok(Self::Http),
            KIND_HTTPS => Ok(Self::Https),
            _ => Err(CodecError::InvalidValue { what: "proxy kind" }),
        }
    }
}

impl ProxyKind {
    fn wire(self) -> u8 {
        match self {
            Self::Tcp => KIND_TCP,
            Self::Http => KIND_HTTP,
            Self::Https => KIND_HTTPS,
        }
    }
}

impl Decode for ProxySpec {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        let name = ProxyName::decode(buf)?;
        let kind = ProxyKind::decode(buf)?;
        let remote_port = get_u16(buf, "remote port")?;
        let vhost = match kind.is_vhost() {
            true => get_vhost(buf)?,
            false => VhostSpec::default(),
        };
        Ok(Self {
            name,
            kind,
            remote_port,
            vhost,
        })
    }
}

impl Encode for ProxySpec {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        self.name.encode(buf)?;
        buf.put_u8(self.kind.wire());
        buf.put_u16(self.remote_port);
        match self.kind.is_vhost() {
            true => put_vhost(buf, &self.vhost),
            // A tcp proxy has no names to send; refuse rather than drop them silently.
            false if self.vhost != VhostSpec::default() => Err(CodecError::InvalidValue {
                what: "vhost settings on a tcp proxy",
            }),
            false => Ok(()),
        }
    }
}

impl Decode for ProxyOutcome {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        match get_u8(buf, "proxy outcome")? {
            OUTCOME_BOUND => Ok(Self::Bound {
                id: ProxyId(get_u32(buf, "proxy id")?),
                remote_addr: get_addr(buf, "remote address")?,
            }),
            OUTCOME_REFUSED => Ok(Self::Refused {
                reason: get_string(buf, "refusal reason", MAX_TEXT_LEN)?,
            }),
            _ => Err(CodecError::InvalidValue {
                what: "proxy outcome",
            }),
        }
    }
}

impl Encode for ProxyOutcome {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        match self {
            Self::Bound { id, remote_addr } => {
                buf.put_u8(OUTCOME_BOUND);
                buf.put_u32(id.0);
                put_addr(buf, remote_addr);
                Ok(())
            }
            Self::Refused { reason } => {
                buf.put_u8(OUTCOME_REFUSED);
                put_str(buf, reason, "refusal reason", MAX_TEXT_LEN)
            }
        }
    }
}

impl Decode for ProxyResult {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            name: ProxyName::decode(buf)?,
            outcome: ProxyOutcome::decode(buf)?,
        })
    }
}

impl Encode for ProxyResult {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        self.name.encode(buf)?;
        self.outcome.encode(buf)
    }
}

impl Decode for Hello {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            minor: get_u16(buf, "minor version")?,
            agent: get_string(buf, "agent", MAX_TEXT_LEN)?,
            proxies: get_list(buf, "proxies")?,
        })
    }
}

impl Encode for Hello {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        buf.put_u16(self.minor);
        put_str(buf, &self.agent, "agent", MAX_TEXT_LEN)?;
        put_list(buf, &self.proxies, "proxies")
    }
}

impl Decode for Welcome {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            minor: get_u16(buf, "minor version")?,
            results: get_list(buf, "proxy results")?,
        })
    }
}

impl Encode for Welcome {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        buf.put_u16(self.minor);
        put_list(buf, &self.results, "proxy results")
    }
}

impl Decode for AddProxies {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            proxies: get_list(buf, "proxies")?,
        })
    }
}

impl Encode for AddProxies {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_list(buf, &self.proxies, "proxies")
    }
}

impl Decode for AddResults {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            results: get_list(buf, "proxy results")?,
        })
    }
}

impl Encode for AddResults {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_list(buf, &self.results, "proxy results")
    }
}

impl Decode for RemoveProxies {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            names: get_list(buf, "proxy names")?,
        })
    }
}

impl Encode for RemoveProxies {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_list(buf, &self.names, "proxy names")
    }
}

impl Decode for ProxyClosed {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            name: ProxyName::decode(buf)?,
            reason: get_string(buf, "close reason", MAX_TEXT_LEN)?,
        })
    }
}

impl Encode for ProxyClosed {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        self.name.encode(buf)?;
        put_str(buf, &self.reason, "close reason", MAX_TEXT_LEN)
    }
}

impl Decode for ProxiesClosed {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            closed: get_list(buf, "closed proxies")?,
        })
    }
}

impl Encode for ProxiesClosed {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_list(buf, &self.closed, "closed proxies")
    }
}

impl Decode for GoingAway {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            reason: get_string(buf, "going-away reason", MAX_TEXT_LEN)?,
        })
    }
}

impl Encode for GoingAway {
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError> {
        put_str(buf, &self.reason, "going-away reason", MAX_TEXT_LEN)
    }
}

impl Decode for DataHeader {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError> {
        Ok(Self {
            proxy: ProxyId(get_u32(buf, "proxy id")?),
            visitor: get_addr(buf, "visitor address")?,
        })
    }
}

impl DataHeader {
    /// Writes the body; a data header has no limits to break, so this cannot fail.
    pub(crate) fn put<B: BufMut>(&self, buf: &mut B) {
        buf.put_u32(self.proxy.0);
        put_addr(buf, &self.visitor);
    }
}
