//! Outbound calls: INVITE with digest retries, redirects, early media,
//! CANCEL (and the CANCEL/200 race), forked answers, BYE.

use super::*;

impl Inner {
    // ---------------------------------------------------------------- outbound

    pub(super) async fn run_outbound(
        self: Arc<Self>,
        call_id: CallId,
        idx: usize,
        req: OutboundCall,
    ) {
        let reason = self.outbound_inner(&call_id, idx, req).await;
        if let Some(reason) = reason {
            lock(&self.calls).remove(&call_id.0);
            info!(call = %call_id, ?reason, "outbound call ended");
            self.emit(Event::Ended {
                call: call_id,
                reason,
            });
        }
    }

    /// Runs the INVITE transaction(s) of an outbound call. Returns the end
    /// reason if the call ended here, `None` when it is established.
    pub(super) async fn outbound_inner(
        self: &Arc<Self>,
        call_id: &CallId,
        idx: usize,
        req: OutboundCall,
    ) -> Option<EndReason> {
        let t = self.trunk(idx).clone();
        let domain = self.domain(idx);
        let mut media = req.media;
        if !t.codecs.is_empty() {
            media.codecs = t.codecs.clone();
        }
        let offer = media.offer();
        let callee = t.number_format.rewrite(&req.to);
        let mut ruri = self.trunk_uri(idx, &callee);
        let to = format!("<sip:{callee}@{domain}>");
        let local_tag = self.random_token(10);
        let (from, mut extra) = match &req.caller_id {
            Some(cid) => (
                format!("<sip:{cid}@{domain}>"),
                vec![(
                    "P-Asserted-Identity".to_string(),
                    format!("<sip:{cid}@{domain}>"),
                )],
            ),
            None => (
                "\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_string(),
                vec![("Privacy".to_string(), "id".to_string())],
            ),
        };
        extra.push(("Supported".into(), "replaces".into()));
        lock(&self.calls).insert(
            call_id.0.clone(),
            Call {
                trunk: idx,
                outbound: true,
                confirmed: false,
                local_tag: local_tag.clone(),
                local_uri: from.clone(),
                remote_uri: to.clone(),
                remote_tag: None,
                remote_target: ruri.clone(),
                route_set: Vec::new(),
                cseq: 1,
                local_media: Some(media.clone()),
                invite: None,
                provisional_seen: false,
                cancel_requested: false,
                cancel_sent: false,
                server_tx: None,
                invite_req: None,
                remote_offer: None,
                answered: false,
                session_expires: None,
                we_refresh: false,
                last_refresh: std::time::Instant::now(),
            },
        );
        let mut auth = Authenticator::new();
        let mut auth_headers: Vec<(String, String)> = Vec::new();
        let mut redirects = 0u8;
        let mut cseq = 1u32;
        loop {
            let mut hdrs = extra.clone();
            hdrs.extend(auth_headers.iter().cloned());
            let invite = match self.build(
                &RequestParts {
                    trunk: idx,
                    method: "INVITE",
                    ruri: &ruri,
                    from: format!("{from};tag={local_tag}"),
                    to: to.clone(),
                    call_id: &call_id.0,
                    cseq,
                    routes: &[],
                    extra: hdrs,
                    body: Some(&offer),
                },
                &self.random_token(16),
            ) {
                Ok(r) => r,
                Err(e) => return Some(EndReason::Failed(e)),
            };
            {
                let mut calls = lock(&self.calls);
                let c = calls.get_mut(&call_id.0)?;
                if c.cancel_requested {
                    return Some(EndReason::LocalHangup);
                }
                c.invite = Some(invite.clone());
                c.provisional_seen = false;
                c.cancel_sent = false;
                c.cseq = cseq;
            }
            let mut tx = match self.start_tx(invite).await {
                Ok(tx) => tx,
                Err(e) => return Some(EndReason::Failed(e)),
            };
            let mut early_origin = None;
            let final_resp = loop {
                let Some(msg) = tx.receive().await else {
                    return Some(EndReason::Failed(Error::TimedOut("INVITE")));
                };
                let SipMessage::Response(resp) = msg else {
                    continue;
                };
                let status = status_of(&resp);
                if status >= 200 {
                    break resp;
                }
                if status == 100 {
                    continue;
                }
                let sdp = String::from_utf8_lossy(resp.body()).to_string();
                let cancel_now = {
                    let mut calls = lock(&self.calls);
                    let c = calls.get_mut(&call_id.0)?;
                    c.provisional_seen = true;
                    if let Some(to) = text::value(&resp.headers, "To") {
                        c.remote_tag = text::tag(&to).or(c.remote_tag.take());
                    }
                    if c.cancel_requested && !c.cancel_sent {
                        c.cancel_sent = true;
                        c.invite.clone()
                    } else {
                        None
                    }
                };
                if let Some(inv) = cancel_now {
                    let i = self.clone();
                    tokio::spawn(async move { i.send_cancel(inv).await });
                }
                if !sdp.trim().is_empty() {
                    match RemoteMedia::parse(&sdp) {
                        Ok(remote) => {
                            if early_origin != Some(remote.origin) {
                                early_origin = Some(remote.origin);
                                self.emit(Event::EarlyMedia {
                                    call: call_id.clone(),
                                    remote,
                                });
                            }
                        }
                        Err(e) => warn!(call = %call_id, error = %e, "bad early SDP"),
                    }
                    if status == 180 {
                        self.emit(Event::Ringing {
                            call: call_id.clone(),
                        });
                    }
                } else {
                    self.emit(Event::Ringing {
                        call: call_id.clone(),
                    });
                }
            };
            let status = status_of(&final_resp);
            let reason_phrase = final_resp.reason_phrase().unwrap_or("").to_string();
            match status {
                200..=299 => {
                    // The transaction already sent the ACK (auto_ack_2xx);
                    // keep it alive to re-ACK retransmitted 2xx (RFC 6026 §7.2)
                    // and to end forked dialogs: the first 2xx wins, every
                    // other dialog is ACKed (by the transaction) and BYE'd
                    // (RFC 3261 §13.2.2.4).
                    let winner = text::value(&final_resp.headers, "To").and_then(|v| text::tag(&v));
                    let i = self.clone();
                    let from_hdr = format!("{from};tag={local_tag}");
                    let cid = call_id.clone();
                    tokio::spawn(async move {
                        let mut ended: Vec<String> = Vec::new();
                        let _ = tokio::time::timeout(Duration::from_secs(40), async {
                            while let Some(msg) = tx.receive().await {
                                let SipMessage::Response(r) = msg else {
                                    continue;
                                };
                                if status_of(&r) / 100 != 2 {
                                    continue;
                                }
                                let Some(tag) =
                                    text::value(&r.headers, "To").and_then(|v| text::tag(&v))
                                else {
                                    continue;
                                };
                                if Some(&tag) == winner.as_ref() || ended.contains(&tag) {
                                    continue;
                                }
                                ended.push(tag);
                                info!(call = %cid, "forked 2xx from a second dialog: BYE");
                                i.bye_fork(idx, &cid, &r, &from_hdr, cseq + 1).await;
                            }
                        })
                        .await;
                    });
                    return self.on_outbound_2xx(call_id, &final_resp, &media).await;
                }
                401 | 407 => {
                    let Some(cred) = t.credentials.clone() else {
                        return Some(EndReason::Rejected {
                            status,
                            reason: reason_phrase,
                        });
                    };
                    let (kind, chs) = challenges_of(&final_resp);
                    let cnonce = self.random_token(16);
                    let uri = ruri.clone();
                    match auth.answer(kind, &chs, &cred, "INVITE", &uri, &cnonce) {
                        Ok((name, value)) => {
                            info!(call = %call_id, status, challenges = chs.len(), "INVITE challenged: answering with digest");
                            auth_headers.retain(|(n, _)| n != name);
                            auth_headers.push((name.to_string(), value));
                            cseq += 1;
                        }
                        Err(e) => {
                            warn!(call = %call_id, error = %e, "authentication failed");
                            return Some(EndReason::Failed(e));
                        }
                    }
                }
                300..=399 => {
                    let target = text::values(&final_resp.headers, "Contact")
                        .iter()
                        .flat_map(|v| text::split_list(v))
                        .map(|c| text::uri(&c))
                        .find(|u| u.starts_with("sip:") || u.starts_with("sips:"));
                    redirects += 1;
                    match target {
                        Some(u) if redirects <= t.max_redirects => {
                            debug!(call = %call_id, target = %u, "following redirect");
                            ruri = u;
                            cseq += 1;
                            auth = Authenticator::new();
                            auth_headers.clear();
                        }
                        _ => {
                            return Some(EndReason::Rejected {
                                status,
                                reason: reason_phrase,
                            })
                        }
                    }
                }
                _ => {
                    let cancelled = lock(&self.calls)
                        .get(&call_id.0)
                        .is_some_and(|c| c.cancel_requested);
                    // 487 answers our CANCEL; 408 (Timer B) after a hangup
                    // before any provisional response is our hangup as well.
                    return Some(if cancelled && (status == 487 || status == 408) {
                        EndReason::LocalHangup
                    } else {
                        EndReason::Rejected {
                            status,
                            reason: reason_phrase,
                        }
                    });
                }
            }
        }
    }

    pub(super) async fn on_outbound_2xx(
        self: &Arc<Self>,
        call_id: &CallId,
        resp: &Response,
        media: &LocalMedia,
    ) -> Option<EndReason> {
        let cancelled = {
            let mut calls = lock(&self.calls);
            let c = calls.get_mut(&call_id.0)?;
            if let Some(to) = text::value(&resp.headers, "To") {
                c.remote_tag = text::tag(&to);
            }
            if let Some(contact) = text::value(&resp.headers, "Contact") {
                c.remote_target = text::uri(&contact);
            }
            let mut routes: Vec<String> = text::values(&resp.headers, "Record-Route")
                .iter()
                .flat_map(|v| text::split_list(v))
                .collect();
            routes.reverse();
            c.route_set = routes;
            c.confirmed = true;
            c.invite = None;
            c.cancel_requested
        };
        if cancelled {
            // CANCEL and 200 crossed: the ACK is sent, now end the dialog.
            info!(call = %call_id, "200 crossed our CANCEL: sending BYE");
            self.send_bye(call_id).await;
            return Some(EndReason::LocalHangup);
        }
        let sdp = String::from_utf8_lossy(resp.body()).to_string();
        let negotiated = RemoteMedia::parse(&sdp).and_then(|remote| {
            let (codec, pt) = remote
                .choose(&media.codecs)
                .ok_or_else(|| Error::PeerIncompatible("answer has no codec we offered".into()))?;
            Ok((
                remote.clone(),
                Negotiated {
                    codec,
                    payload_type: pt,
                    telephone_event_pt: remote.telephone_event_pt,
                },
            ))
        });
        match negotiated {
            Ok((remote, negotiated)) => {
                info!(call = %call_id, codec = ?negotiated.codec, "outbound call answered");
                self.emit(Event::Answered {
                    call: call_id.clone(),
                    remote,
                    negotiated,
                });
                // A session timer the answerer asks us to refresh
                // (RFC 4028 §7.2: no refresher parameter means the UAC).
                if let Some(se) = text::value(&resp.headers, "Session-Expires") {
                    let delta = se
                        .split(';')
                        .next()
                        .and_then(|d| d.trim().parse::<u64>().ok())
                        .filter(|d| *d > 0);
                    let refresher_uas = se.to_ascii_lowercase().contains("refresher=uas");
                    if let (Some(delta), false) = (delta, refresher_uas) {
                        if let Some(c) = lock(&self.calls).get_mut(&call_id.0) {
                            c.session_expires = Some(delta);
                            c.we_refresh = true;
                        }
                        let i = self.clone();
                        let cid = call_id.clone();
                        tokio::spawn(async move { i.refresh_loop(cid, delta).await });
                    }
                }
                None
            }
            Err(e) => {
                warn!(call = %call_id, error = %e, "unusable answer: hanging up");
                self.send_bye(call_id).await;
                Some(EndReason::Failed(e))
            }
        }
    }

    /// Ends a forked dialog created by `resp`, a 2xx that lost the race.
    pub(super) async fn bye_fork(
        &self,
        trunk: usize,
        call_id: &CallId,
        resp: &Response,
        from: &str,
        cseq: u32,
    ) {
        let to = text::value(&resp.headers, "To").unwrap_or_default();
        let target = text::value(&resp.headers, "Contact")
            .map(|c| text::uri(&c))
            .unwrap_or_default();
        let mut routes: Vec<String> = text::values(&resp.headers, "Record-Route")
            .iter()
            .flat_map(|v| text::split_list(v))
            .collect();
        routes.reverse();
        let mut cseq = cseq;
        let result = self
            .request_with_auth(trunk, &mut cseq, |cseq, auth| {
                self.build(
                    &RequestParts {
                        trunk,
                        method: "BYE",
                        ruri: &target,
                        from: from.to_string(),
                        to: to.clone(),
                        call_id: &call_id.0,
                        cseq,
                        routes: &routes,
                        extra: auth.to_vec(),
                        body: None,
                    },
                    &self.random_token(16),
                )
            })
            .await;
        if let Err(e) = result {
            warn!(call = %call_id, error = %e, "BYE of a forked dialog failed");
        }
    }

    pub(super) async fn send_cancel(self: Arc<Self>, invite: Request) {
        let h = &invite.headers;
        let get = |n: &str| text::value(h, n).unwrap_or_default();
        let via = get("Via");
        let cseq_num = get("CSeq")
            .split_whitespace()
            .next()
            .unwrap_or("1")
            .to_string();
        let mut s = format!(
            "CANCEL {} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq_num} CANCEL\r\n",
            invite.uri,
            get("From"),
            get("To"),
            get("Call-ID")
        );
        for r in text::values(h, "Route") {
            s.push_str(&format!("Route: {r}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        let req = match Request::try_from(s.as_str()) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot build CANCEL");
                return;
            }
        };
        match self.start_tx(req).await {
            Ok(mut tx) => {
                let _ = Self::final_response(&mut tx).await;
            }
            Err(e) => warn!(error = %e, "CANCEL failed"),
        }
    }

    /// Sends BYE in the established dialog and forgets the call.
    pub(super) async fn send_bye(self: &Arc<Self>, call_id: &CallId) {
        let Some(c) = lock(&self.calls).remove(&call_id.0) else {
            return;
        };
        let (from, to) = (
            format!("{};tag={}", c.local_uri, c.local_tag),
            match &c.remote_tag {
                Some(t) => format!("{};tag={t}", c.remote_uri),
                None => c.remote_uri.clone(),
            },
        );
        let mut cseq = c.cseq + 1;
        let result = self
            .request_with_auth(c.trunk, &mut cseq, |cseq, auth| {
                self.build(
                    &RequestParts {
                        trunk: c.trunk,
                        method: "BYE",
                        ruri: &c.remote_target,
                        from: from.clone(),
                        to: to.clone(),
                        call_id: &call_id.0,
                        cseq,
                        routes: &c.route_set,
                        extra: auth.to_vec(),
                        body: None,
                    },
                    &self.random_token(16),
                )
            })
            .await;
        match result {
            Ok(r) => debug!(call = %call_id, status = status_of(&r), "BYE answered"),
            Err(e) => warn!(call = %call_id, error = %e, "BYE failed"),
        }
    }

    /// Refreshes the session at half the interval by re-INVITE
    /// ([RFC 4028 §10](https://www.rfc-editor.org/rfc/rfc4028#section-10)).
    pub(super) async fn refresh_loop(self: Arc<Self>, call: CallId, interval: u64) {
        let half = Duration::from_millis(interval * 500);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(half) => {}
            }
            if !lock(&self.calls).contains_key(&call.0) {
                return;
            }
            match self.reinvite(&call, None, "INVITE").await {
                Ok(_) => debug!(call = %call, "session refreshed"),
                Err(e) => warn!(call = %call, error = %e, "session refresh failed"),
            }
        }
    }
}
