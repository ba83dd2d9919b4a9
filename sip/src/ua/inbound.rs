//! Inbound requests: source check, INVITE (100, 180, CANCEL → 487), in-dialog
//! offers (re-INVITE, UPDATE), BYE, OPTIONS, INFO.

use super::*;

impl Inner {
    // ---------------------------------------------------------------- inbound

    pub(super) async fn incoming_loop(
        self: Arc<Self>,
        mut rx: rsipstack::transaction::TransactionReceiver,
    ) {
        loop {
            let tx = tokio::select! {
                _ = self.cancel.cancelled() => return,
                tx = rx.recv() => match tx { Some(tx) => tx, None => return },
            };
            let i = self.clone();
            tokio::spawn(async move { i.on_request(tx).await });
        }
    }

    pub(super) fn trunk_for_source(&self, ip: IpAddr) -> Option<usize> {
        self.config.trunks.iter().enumerate().find_map(|(i, t)| {
            (self.trunk_ips[i].contains(&ip) || t.allowed_sources.iter().any(|n| n.contains(ip)))
                .then_some(i)
        })
    }

    pub(super) async fn reply(&self, tx: &mut Transaction, status: u16, extra: &[(&str, &str)]) {
        let mut resp = self.response(&tx.original, status, None, false);
        for (k, v) in extra {
            resp.headers
                .push(rsipstack::sip::Header::Other((*k).into(), (*v).into()));
        }
        if let Err(e) = tx.respond(resp).await {
            debug!(error = %e, status, "reply failed");
        }
    }

    pub(super) async fn on_request(self: Arc<Self>, mut tx: Transaction) {
        let src = tx
            .connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok());
        let method = tx.original.method;
        if let Some(ip) = src.map(|s| s.ip()) {
            if method != Method::Ack && method != Method::Cancel && !self.limiter.admit(ip) {
                debug!(ip = %Pii(ip), %method, "rate limited: 503");
                self.reply(&mut tx, 503, &[("Retry-After", "5")]).await;
                return;
            }
        }
        let Some(trunk) = src.and_then(|s| self.trunk_for_source(s.ip())) else {
            // RFC 3261 §8.2: refuse without telling whether the number exists.
            info!(src = ?src.map(Pii), %method, "request from an unauthorized source: 403");
            self.reply(&mut tx, 403, &[]).await;
            return;
        };
        let to_tag = text::value(&tx.original.headers, "To").and_then(|v| text::tag(&v));
        let call_id = text::value(&tx.original.headers, "Call-ID").unwrap_or_default();
        match method {
            Method::Options => {
                self.reply(
                    &mut tx,
                    200,
                    &[("Allow", ALLOW), ("Accept", "application/sdp")],
                )
                .await
            }
            Method::Invite if to_tag.is_none() => self.on_invite(tx, trunk, call_id).await,
            Method::Invite | Method::Update => self.on_offer_in_dialog(tx, call_id).await,
            Method::Bye => {
                let known = lock(&self.calls).remove(&call_id).is_some();
                if known {
                    self.reply(&mut tx, 200, &[]).await;
                    info!(call = %call_id, "remote hangup");
                    self.emit(Event::Ended {
                        call: CallId(call_id),
                        reason: EndReason::RemoteHangup,
                    });
                } else {
                    self.reply(&mut tx, 481, &[]).await;
                }
            }
            Method::Info => {
                let known = lock(&self.calls).contains_key(&call_id);
                self.reply(&mut tx, if known { 200 } else { 481 }, &[])
                    .await;
            }
            Method::Ack | Method::Cancel => {}
            _ => self.reply(&mut tx, 405, &[("Allow", ALLOW)]).await,
        }
    }

    pub(super) async fn on_invite(
        self: Arc<Self>,
        mut tx: Transaction,
        trunk: usize,
        call_id: String,
    ) {
        let _ = tx.send_trying().await;
        let body = String::from_utf8_lossy(tx.original.body()).to_string();
        let offer = if body.trim().is_empty() {
            None
        } else {
            match RemoteMedia::parse(&body) {
                Ok(o) => Some(o),
                Err(e) => {
                    let code = e.status_code();
                    info!(call = %call_id, error = %e, code, "unusable offer");
                    self.reply(
                        &mut tx,
                        code,
                        &[("Warning", "399 jsg \"unusable SDP offer\"")],
                    )
                    .await;
                    return;
                }
            }
        };
        let trunk_cfg = self.trunk(trunk);
        if let Some(o) = &offer {
            if o.choose(&trunk_cfg.codecs).is_none() {
                self.reply(&mut tx, 488, &[("Warning", "304 jsg \"no common codec\"")])
                    .await;
                return;
            }
        }
        // Our To tag, fixed for every response of this dialog.
        let local_tag = self.random_token(10);
        let mut req = tx.original.clone();
        let to = text::value(&req.headers, "To").unwrap_or_default();
        req.headers
            .retain(|h| !matches!(h, rsipstack::sip::Header::To(_)));
        req.headers.push(rsipstack::sip::Header::To(
            format!("{to};tag={local_tag}").into(),
        ));
        let from = text::value(&req.headers, "From").unwrap_or_default();
        let pai = text::value(&req.headers, "P-Asserted-Identity");
        let caller = text::user(&text::uri(pai.as_deref().unwrap_or(&from)));
        let called = text::user(&text::uri(&to));
        let remote_target = text::value(&req.headers, "Contact")
            .map(|c| text::uri(&c))
            .unwrap_or_else(|| req.uri.to_string());
        let route_set: Vec<String> = text::values(&req.headers, "Record-Route")
            .iter()
            .flat_map(|v| text::split_list(v))
            .collect();
        let session_expires = text::value(&req.headers, "Session-Expires")
            .and_then(|v| v.split(';').next()?.trim().parse::<u64>().ok())
            .filter(|s| *s > 0);
        let cid = CallId(call_id.clone());
        lock(&self.calls).insert(
            call_id.clone(),
            Call {
                trunk,
                outbound: false,
                confirmed: false,
                local_tag,
                local_uri: text::without_params(&to),
                remote_uri: text::without_params(&from),
                remote_tag: text::tag(&from),
                remote_target,
                route_set,
                cseq: 0,
                local_media: None,
                invite: None,
                provisional_seen: false,
                cancel_requested: false,
                cancel_sent: false,
                server_tx: Some(tx.tu_sender.clone()),
                invite_req: Some(req.clone()),
                remote_offer: offer.clone(),
                answered: false,
                session_expires,
                we_refresh: false,
                last_refresh: std::time::Instant::now(),
            },
        );
        info!(call = %cid, trunk = %trunk_cfg.name, "incoming call");
        if !self.config.ringing_delay.is_zero() {
            tokio::time::sleep(self.config.ringing_delay).await;
        }
        let ringing = self.response(&req, 180, None, true);
        if let Err(e) = tx.respond(ringing).await {
            debug!(error = %e, "180 failed");
        }
        self.emit(Event::Incoming {
            call: cid.clone(),
            trunk: trunk_cfg.name.clone(),
            from: caller,
            to: called,
            offer,
        });
        // Drive the transaction: CANCEL, our final response (sent through the
        // TU channel by answer/reject), the ACK.
        while let Some(msg) = tx.receive().await {
            let SipMessage::Request(r) = msg else {
                continue;
            };
            match r.method {
                Method::Cancel => {
                    let still_ringing = {
                        let mut calls = lock(&self.calls);
                        let ringing = calls.get(&call_id).is_some_and(|c| !c.answered);
                        if ringing {
                            calls.remove(&call_id);
                        }
                        ringing
                    };
                    if still_ringing {
                        let resp = self.response(&req, 487, None, false);
                        let _ = tx.respond(resp).await;
                        info!(call = %cid, "caller cancelled");
                        self.emit(Event::Ended {
                            call: cid.clone(),
                            reason: EndReason::RemoteCancel,
                        });
                    }
                }
                Method::Ack => {
                    let body = String::from_utf8_lossy(r.body()).to_string();
                    if !body.trim().is_empty() {
                        if let Ok(remote) = RemoteMedia::parse(&body) {
                            self.emit(Event::MediaUpdate {
                                call: cid.clone(),
                                remote,
                            });
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
        if let Some(c) = lock(&self.calls).get_mut(&call_id) {
            c.server_tx = None;
        }
    }

    pub(super) async fn on_offer_in_dialog(self: Arc<Self>, mut tx: Transaction, call_id: String) {
        let body = String::from_utf8_lossy(tx.original.body()).to_string();
        let media = lock(&self.calls)
            .get(&call_id)
            .filter(|c| c.confirmed)
            .and_then(|c| c.local_media.clone());
        let Some(mut media) = media else {
            self.reply(&mut tx, 481, &[]).await;
            return;
        };
        let session_expires = text::value(&tx.original.headers, "Session-Expires");
        if let Some(c) = lock(&self.calls).get_mut(&call_id) {
            c.last_refresh = std::time::Instant::now();
        }
        if body.trim().is_empty() {
            // An offerless re-INVITE or UPDATE: answer with our current offer.
            media.session_version += 1;
            let sdp = media.offer();
            let resp = self.response(&tx.original, 200, Some(&sdp), true);
            let _ = tx.respond(resp).await;
            if let Some(c) = lock(&self.calls).get_mut(&call_id) {
                c.local_media = Some(media);
            }
            while tx.receive().await.is_some() {}
            return;
        }
        let remote = match RemoteMedia::parse(&body) {
            Ok(r) => r,
            Err(e) => {
                self.reply(&mut tx, e.status_code(), &[]).await;
                return;
            }
        };
        media.session_version += 1;
        let sdp = match media.answer(&remote) {
            Ok((sdp, _)) => sdp,
            Err(e) => {
                self.reply(&mut tx, e.status_code(), &[]).await;
                return;
            }
        };
        if let Some(c) = lock(&self.calls).get_mut(&call_id) {
            c.local_media = Some(media);
        }
        let mut resp = self.response(&tx.original, 200, Some(&sdp), true);
        if let Some(se) = &session_expires {
            let delta = se.split(';').next().unwrap_or("").trim().to_string();
            resp.headers.push(rsipstack::sip::Header::Other(
                "Session-Expires".into(),
                format!("{delta};refresher=uac"),
            ));
        }
        if let Err(e) = tx.respond(resp).await {
            debug!(error = %e, "re-INVITE answer failed");
        }
        info!(call = %call_id, hold = remote.is_hold(), "media update");
        self.emit(Event::MediaUpdate {
            call: CallId(call_id),
            remote,
        });
        if tx.original.method == Method::Invite {
            let _ = tokio::time::timeout(Duration::from_secs(40), async {
                while tx.receive().await.is_some() {}
            })
            .await;
        }
    }
}
