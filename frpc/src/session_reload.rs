//! Reloads while a session runs: new server settings move the connection, changed proxies
//! are withdrawn and registered with `RemoveProxies` / `AddProxies` (minor 2), or with a new
//! session against an older server; the server's answers arrive on the control stream.

use std::sync::Arc;

use frp_proto::{AddProxies, ProxiesClosed, ProxyId, ProxyName, RemoveProxies};
use futures_util::future::BoxFuture;
use tracing::{debug, info, warn};

use crate::config::LocalProxy;
use crate::register::{send_msg, sendable, Registered, SessionError};
use crate::reload::{restart_needed, Apply, Origin, ProxyDiff, ReloadError, ReloadReport};
use crate::session::{Answer, Session, SessionEnd};
use crate::status::ProxyState;

/// A connection being made while this one still serves: with new server settings (a
/// reload, answered once it is done), or over QUIC again (`auto` on TCP, no answer).
pub(crate) struct Moving {
    pub(crate) attempt: BoxFuture<'static, Result<Registered, SessionError>>,
    pub(crate) answer: Option<Answer>,
}

/// A reload waiting for the server's answers.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) answer: Answer,
    /// The names of our `RemoveProxies`, until its `ProxiesClosed` arrives.
    pub(crate) removing: Option<Vec<ProxyName>>,
    /// Whether our `AddProxies` awaits its `AddResults`.
    pub(crate) adding: bool,
    /// Withdrawn for good (not registered again).
    pub(crate) gone: Vec<ProxyName>,
    /// When a server that has not answered is given up on.
    pub(crate) deadline: tokio::time::Instant,
}

impl Session {
    /// `ProxiesClosed`: the answer to our `RemoveProxies` (its names, in order), or the
    /// server withdrawing proxies by itself.
    pub(crate) fn on_closed(&mut self, c: ProxiesClosed) {
        let names: Vec<ProxyName> = c.closed.iter().map(|p| p.name.clone()).collect();
        let answer = self
            .reload
            .as_mut()
            .filter(|f| f.removing.as_ref() == Some(&names));
        if let Some(f) = answer {
            f.removing = None;
            let gone = f.gone.clone();
            self.forget(&names);
            self.shared.status.send_modify(|s| {
                for name in &names {
                    match gone.contains(name) {
                        true => s.proxies.remove(name),
                        false => s.proxies.insert(name.clone(), ProxyState::Pending),
                    };
                }
            });
            return;
        }
        self.forget(&names);
        self.shared.status.send_modify(|s| {
            for p in c.closed {
                warn!(proxy = %p.name, reason = %p.reason, "server withdrew a proxy");
                if let Some(state) = s.proxies.get_mut(&p.name) {
                    *state = ProxyState::Refused(format!("withdrawn by the server: {}", p.reason));
                }
            }
        });
    }

    /// Drops the ids of proxies the server no longer serves under them.
    fn forget(&mut self, names: &[ProxyName]) {
        let ids: Vec<ProxyId> = names.iter().filter_map(|n| self.ids.remove(n)).collect();
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            targets.remove(&id);
        }
    }

    /// Answers the reload in flight once the server has answered all of it.
    pub(crate) fn reload_progress(&mut self) {
        if self
            .reload
            .as_ref()
            .is_some_and(|f| f.removing.is_none() && !f.adding)
        {
            if let Some(f) = self.reload.take() {
                let report = ReloadReport {
                    connected: true,
                    ..f.answer.report
                };
                let _ = f.answer.reply.send(Ok(report));
            }
        }
    }

    /// Applies new settings: moves the connection when the server settings changed,
    /// otherwise updates local targets in place and registers what changed.
    pub(crate) async fn on_apply(&mut self, apply: Apply) -> Applied {
        let new = Arc::clone(&apply.settings);
        let mut diff = ProxyDiff::between(&self.settings.proxies, &new.proxies);
        diff.retry_unregistered(&new.proxies, |n| self.ids.contains_key(n));
        let mut report = diff.report();
        report.restart_needed = restart_needed(&self.settings, &new);
        if !self.settings.same_server(&new) {
            report.server_moved = true;
            let attempt = self.shared.attempt(Arc::clone(&new), false);
            let answer = Answer {
                reply: apply.reply,
                report,
            };
            info!(server = %new.server_display(), "moving the connection to new server settings");
            return Applied::Move(Moving {
                attempt,
                answer: Some(answer),
            });
        }
        if apply.origin == Origin::Server {
            // Nothing about the server changed: nothing to move.
            let _ = apply.reply.send(Ok(ReloadReport {
                connected: true,
                ..report
            }));
            return Applied::Done;
        }
        self.retarget(&diff.retargeted);
        self.settings = Arc::clone(&new);
        self.shared.adopt(&new);
        let answer = Answer {
            reply: apply.reply,
            report,
        };
        if !diff.registers() {
            let _ = answer.reply.send(Ok(ReloadReport {
                connected: true,
                ..answer.report
            }));
            return Applied::Done;
        }
        if self.minor < 2 {
            info!(
                server_minor = self.minor,
                "the server cannot change proxies in a session; reconnecting"
            );
            self.going_away("client reloading").await;
            return Applied::End(SessionEnd::Reconnect(Answer {
                report: ReloadReport {
                    reconnected: true,
                    ..answer.report
                },
                reply: answer.reply,
            }));
        }
        match self.register_changes(&diff, answer).await {
            Ok(()) => Applied::Done,
            Err(e) => Applied::End(crate::session::ended(e)),
        }
    }

    /// Sends `RemoveProxies` for the removed and changed proxies and `AddProxies` for the
    /// added and changed ones; the answers arrive on the control stream.
    async fn register_changes(
        &mut self,
        diff: &ProxyDiff,
        answer: Answer,
    ) -> Result<(), SessionError> {
        let remove = diff.to_remove();
        let (add, refused) = sendable(
            diff.to_add().iter().map(LocalProxy::spec).collect(),
            self.minor,
        );
        let wait = self.settings.connect_timeout;
        let mut flight = InFlight {
            answer,
            removing: None,
            adding: false,
            gone: diff.removed.clone(),
            deadline: tokio::time::Instant::now() + wait,
        };
        if !remove.is_empty() {
            let msg = RemoveProxies {
                names: remove.clone(),
            };
            send_msg(&self.conn, &mut self.writer, msg.into(), "remove-proxies").await?;
            flight.removing = Some(remove);
        }
        if !add.is_empty() {
            let msg = AddProxies { proxies: add };
            send_msg(&self.conn, &mut self.writer, msg.into(), "add-proxies").await?;
            flight.adding = true;
        }
        self.reload = Some(flight);
        self.apply_results(refused);
        self.reload_progress();
        Ok(())
    }

    /// Points proxies whose local service changed at the new one; their ids stay.
    fn retarget(&mut self, changed: &[LocalProxy]) {
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        for p in changed {
            if let Some(id) = self.ids.get(&p.name) {
                info!(proxy = %p.name, local = %format!("{}:{}", p.local_host, p.local_port), "local service changed");
                targets.insert(*id, Arc::new(p.clone()));
            }
        }
    }
}

/// What applying a change led to.
pub(crate) enum Applied {
    /// Applied (or in flight, answered later).
    Done,
    /// The connection is moving.
    Move(Moving),
    /// The session ends.
    End(SessionEnd),
}

/// The end of a move: the new session to serve, or the old one goes on (`None`) and the
/// reload is answered with why the new one failed.
pub(crate) fn moved_end(
    result: Result<Registered, SessionError>,
    answer: Option<Answer>,
) -> Option<SessionEnd> {
    let Some(answer) = answer else {
        return match result {
            Ok(reg) => {
                info!("QUIC works again: moving the connection back from TCP");
                Some(SessionEnd::Moved(Box::new(reg), None))
            }
            Err(e) => {
                debug!(reason = %e.reason(), "QUIC still does not connect; staying on TCP");
                None
            }
        };
    };
    match result {
        Ok(reg) => Some(SessionEnd::Moved(Box::new(reg), Some(answer))),
        Err(e) => {
            warn!(reason = %e.reason(), "new server settings failed; keeping the current connection");
            let error = ReloadError::Server(e.reason().to_string());
            let _ = answer.reply.send(Err(error));
            None
        }
    }
}
