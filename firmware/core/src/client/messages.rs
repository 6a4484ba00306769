//! Routing messages both ways: cloud frames to local services or the `parodus` service, local
//! messages to the cloud, the QoS queue or back to local services.

use wrp_nostd::{Message, MessageType, Metadata, StrList};

use super::{Client, ConnId, Downstream, Upstream};
use crate::crud::{self, Crud, Origin, Payload, TagRequest};
use crate::error::{Dropped, Error};
use crate::qos::Refused;
use crate::random::{Random, Uuid};
use crate::routing::{is_for, partner_match, service_of};
use crate::services::{Services, MAX_SERVICE_URL};
use crate::time::Instant;
use crate::wire::{self, Extras};

impl<
        'c,
        R: Random,
        const SERVICES: usize,
        const OUTBOX: usize,
        const QUEUE_BYTES: usize,
        const QUEUE_MSGS: usize,
    > Client<'c, R, SERVICES, OUTBOX, QUEUE_BYTES, QUEUE_MSGS>
{
    /// A frame (binary, or text: parodus decodes both) from the cloud on `conn`, reassembled.
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        conn: ConnId,
        frame: &'a [u8],
    ) -> Result<Downstream<'a>, Error> {
        self.tick(now);
        if !self.seen(conn, now) {
            return Ok(Downstream::Dropped(Dropped::StaleConnection));
        }
        self.stats.frames_received = self.stats.frames_received.saturating_add(1);
        let m = match Message::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                self.stats.undecodable = self.stats.undecodable.saturating_add(1);
                return Ok(Downstream::Dropped(Dropped::Undecodable(e)));
            }
        };
        let t = m.msg_type;
        if t == MessageType::SimpleEvent
            && m.rdr.is_some()
            && !m.transaction_uuid.is_empty()
            && self.qos.ack(m.transaction_uuid)
        {
            self.stats.qos_acked = self.stats.qos_acked.saturating_add(1);
            return Ok(Downstream::Acked);
        }
        if !t.is_routable() {
            return Ok(Downstream::Dropped(Dropped::Ignored(t)));
        }
        if !is_for(m.dest, &self.id.device_name) {
            self.stats.not_for_this_device = self.stats.not_for_this_device.saturating_add(1);
            return Ok(Downstream::Dropped(Dropped::NotForThisDevice));
        }
        let partners = &self.id.partners;
        if t == MessageType::SimpleRequestResponse
            && !m.partner_ids.is_empty()
            && !partners.is_empty()
            && !partner_match(m.partner_ids, partners)
        {
            self.stats.answered_403 = self.stats.answered_403.saturating_add(1);
            return self.answer_error(conn, &m, 403);
        }
        let service = service_of(m.dest);
        if self.services.contains(service) {
            return Ok(Downstream::Deliver {
                service,
                message: frame,
            });
        }
        if service == "parodus" && t != MessageType::SimpleEvent {
            if m.source.is_empty() {
                return Ok(Downstream::Dropped(Dropped::NoSource));
            }
            let mut payload = Payload::new();
            return match self.crud(&m, Origin::Cloud(conn), &mut payload) {
                Crud::Tag(tag) => Ok(Downstream::Tag(tag)),
                Crud::Invalid => self.answer_error(conn, &m, 400),
                Crud::Reply { status } => {
                    let answer = crud::answer(&m, Some(status), payload.as_bytes());
                    self.send_answer(conn, &answer)?;
                    Ok(Downstream::Answered { status })
                }
                Crud::CloudDisconnect(reason) => {
                    self.send_answer(conn, &crud::answer(&m, Some(200), &[]))?;
                    self.cloud_disconnect(now, reason)?;
                    Ok(Downstream::Answered { status: 200 })
                }
            };
        }
        if t == MessageType::SimpleEvent {
            self.stats.events_dropped = self.stats.events_dropped.saturating_add(1);
            return Ok(Downstream::Dropped(Dropped::UnknownService));
        }
        self.stats.answered_531 = self.stats.answered_531.saturating_add(1);
        self.answer_error(conn, &m, 531)
    }

    /// A message from a local service (an SP message on the PULL socket, or a firmware
    /// handler's output).
    pub fn handle_local<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
    ) -> Result<Upstream<'a>, Error> {
        self.tick(now);
        let m = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.undecodable = self.stats.undecodable.saturating_add(1);
                return Ok(Upstream::Dropped(Dropped::Undecodable(e)));
            }
        };
        match m.msg_type {
            MessageType::ServiceRegistration => {
                Services::<SERVICES>::check_name(m.service_name)?;
                if m.url.is_empty() || m.url.len() > MAX_SERVICE_URL {
                    return Err(Error::InvalidServiceUrl);
                }
                self.register_service(m.service_name)?;
                Ok(Upstream::Register {
                    service: m.service_name,
                    url: m.url,
                })
            }
            t @ (MessageType::Authorization | MessageType::ServiceAlive | MessageType::Unknown) => {
                Ok(Upstream::Dropped(Dropped::Ignored(t)))
            }
            MessageType::SimpleEvent => self.upstream_event(now, &m),
            MessageType::SimpleRequestResponse => self.upstream(&m),
            t => {
                if !is_for(m.dest, &self.id.device_name) {
                    return self.upstream(&m);
                }
                let service = service_of(m.dest);
                if service == "parodus" {
                    return self.local_crud(now, &m);
                }
                if t == MessageType::Create {
                    return self.upstream(&m);
                }
                if self.services.contains(service) {
                    return Ok(Upstream::Deliver {
                        service,
                        message: bytes,
                    });
                }
                Ok(Upstream::Dropped(Dropped::UnknownService))
            }
        }
    }

    /// Answers a tag request with `status` and `payload` (JSON or empty), the way it came.
    pub fn answer_tag(
        &mut self,
        request: &TagRequest<'_>,
        status: u16,
        payload: &[u8],
    ) -> Result<(), Error> {
        let answer = crud::answer(&request.request(), Some(status), payload);
        match request.origin {
            Origin::Cloud(conn) if self.online() == Some(conn) => self.send_answer(conn, &answer),
            Origin::Cloud(_) => Err(Error::Offline),
            Origin::Local => self.deliver_answer(&answer),
        }
    }

    // ----- internals -------------------------------------------------------------------------

    fn crud<'a>(&self, m: &Message<'a>, origin: Origin, payload: &mut Payload) -> Crud<'a> {
        let online = self.online().is_some();
        crud::handle(m, origin, payload, &self.id, online, |svc| {
            self.services.contains(svc)
        })
    }

    /// Sends `message` to the cloud on `conn` with the device metadata merged in.
    fn send_answer(&mut self, conn: ConnId, message: &Message<'_>) -> Result<(), Error> {
        self.send_with(conn, message, None)
    }

    fn send_with(
        &mut self,
        conn: ConnId,
        message: &Message<'_>,
        partner_ids: Option<(StrList<'_>, &[&str])>,
    ) -> Result<(), Error> {
        let metadata = self.id.metadata(self.connection_reason.as_str());
        let base = Message {
            metadata: Metadata::EMPTY,
            ..*message
        };
        let extras = Extras {
            metadata: Some((message.metadata, &metadata)),
            partner_ids,
        };
        self.outbox
            .send(conn, |buf| wire::encode(&base, &extras, buf))
    }

    /// parodus's error answer (§5.2): same type, swapped, JSON payload, no `status`.
    fn answer_error<'a>(
        &mut self,
        conn: ConnId,
        m: &Message<'_>,
        code: u16,
    ) -> Result<Downstream<'a>, Error> {
        let payload = crud::error_payload(code);
        self.send_answer(conn, &crud::answer(m, None, payload.as_bytes()))?;
        Ok(Downstream::Answered { status: code })
    }

    /// Delivers an answer to the local service its dest names (no metadata: it stays local).
    fn deliver_answer(&mut self, answer: &Message<'_>) -> Result<(), Error> {
        let service = service_of(answer.dest);
        if !self.services.contains(service) {
            return Err(Error::UnknownService);
        }
        self.outbox
            .deliver(service, |buf| wire::encode(answer, &Extras::default(), buf))
    }

    fn local_crud<'a>(&mut self, now: Instant, m: &Message<'a>) -> Result<Upstream<'a>, Error> {
        if m.source.is_empty() {
            return Ok(Upstream::Dropped(Dropped::NoSource));
        }
        if !self.services.contains(service_of(m.source)) {
            return Ok(Upstream::Dropped(Dropped::UnknownService));
        }
        let mut payload = Payload::new();
        let (status, disconnect) = match self.crud(m, Origin::Local, &mut payload) {
            Crud::Tag(tag) => return Ok(Upstream::Tag(tag)),
            Crud::Invalid => {
                let payload = crud::error_payload(400);
                self.deliver_answer(&crud::answer(m, None, payload.as_bytes()))?;
                return Ok(Upstream::Answered { status: 400 });
            }
            Crud::Reply { status } => (status, None),
            Crud::CloudDisconnect(reason) => (200, Some(reason)),
        };
        self.deliver_answer(&crud::answer(m, Some(status), payload.as_bytes()))?;
        if let Some(reason) = disconnect {
            self.cloud_disconnect(now, reason)?;
        }
        Ok(Upstream::Answered { status })
    }

    /// A message for the cloud, sent as is apart from the merged metadata.
    fn upstream<'a>(&mut self, m: &Message<'_>) -> Result<Upstream<'a>, Error> {
        match self.online() {
            Some(conn) => {
                self.send_with(conn, m, None)?;
                Ok(Upstream::Sent)
            }
            None => {
                self.stats.offline_drops = self.stats.offline_drops.saturating_add(1);
                Ok(Upstream::Dropped(Dropped::Offline))
            }
        }
    }

    /// An event: partner ids as parodus sets them (§5.3), every other field kept; QoS events
    /// get a transaction_uuid if they lack one and go through the QoS queue.
    fn upstream_event<'a>(&mut self, now: Instant, m: &Message<'_>) -> Result<Upstream<'a>, Error> {
        // A copy of the list (it borrows the config, not the client) so the client stays free.
        let device = self.id.partners.clone();
        let device: &[&str] = &device;
        let (own, extra) = if device.is_empty() {
            (m.partner_ids, None)
        } else if m.partner_ids.is_empty() {
            (StrList::EMPTY, Some((StrList::EMPTY, device)))
        } else if partner_match(m.partner_ids, device) {
            (StrList::EMPTY, None)
        } else {
            (StrList::EMPTY, Some((m.partner_ids, device)))
        };
        let level = m.qos_level().filter(|l| l.needs_ack());
        let uuid;
        let transaction_uuid = if level.is_some() && m.transaction_uuid.is_empty() {
            uuid = Uuid::new_v4(&mut self.rng);
            uuid.as_str()
        } else {
            m.transaction_uuid
        };
        let base = Message {
            partner_ids: own,
            transaction_uuid,
            ..*m
        };
        let Some(level) = level else {
            return match self.online() {
                Some(conn) => {
                    self.send_with(conn, &base, extra)?;
                    Ok(Upstream::Sent)
                }
                None => {
                    self.stats.offline_drops = self.stats.offline_drops.saturating_add(1);
                    Ok(Upstream::Dropped(Dropped::Offline))
                }
            };
        };
        let metadata = self.id.metadata(self.connection_reason.as_str());
        let extras = Extras {
            metadata: Some((m.metadata, &metadata)),
            partner_ids: extra,
        };
        let base = Message {
            metadata: Metadata::EMPTY,
            ..base
        };
        let len = wire::encoded_len(&base, &extras)?;
        match self
            .qos
            .enqueue(len, level, now, |buf| wire::encode(&base, &extras, buf))
        {
            Ok(displaced) => {
                self.stats.qos_dropped = self.stats.qos_dropped.saturating_add(displaced as u32);
                Ok(Upstream::Queued { displaced })
            }
            Err(Refused::Full) => {
                self.stats.qos_dropped = self.stats.qos_dropped.saturating_add(1);
                Ok(Upstream::Dropped(Dropped::QueueFull))
            }
            Err(Refused::TooLarge) => Err(Error::MessageTooLarge {
                len,
                capacity: QUEUE_BYTES,
            }),
            Err(Refused::Write(e)) => Err(e),
        }
    }
}
