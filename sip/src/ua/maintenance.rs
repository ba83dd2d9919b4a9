//! Per-trunk background work: OPTIONS ping, registration, the rate limit.

use super::*;

impl Inner {
    // ---------------------------------------------------------------- OPTIONS ping

    pub(super) async fn ping_loop(self: Arc<Self>, idx: usize, every: Duration) {
        let t = self.trunk(idx).clone();
        let domain = self.domain(idx);
        let ruri = format!("sip:{}", hostport(&t));
        let mut last: Option<bool> = None;
        let mut seq = 1u32;
        loop {
            let call_id = format!("{}@jsg", self.random_token(20));
            let req = self.build(
                &RequestParts {
                    trunk: idx,
                    method: "OPTIONS",
                    ruri: &ruri,
                    from: format!(
                        "<sip:{}@{domain}>;tag={}",
                        self.config.contact_user,
                        self.random_token(10)
                    ),
                    to: format!("<sip:{domain}>"),
                    call_id: &call_id,
                    cseq: seq,
                    routes: &[],
                    extra: Vec::new(),
                    body: None,
                },
                &self.random_token(16),
            );
            seq = seq.wrapping_add(1);
            // Any final response but our own 408 (Timer F) means it is up.
            let up = match req {
                Ok(req) => match self.start_tx(req).await {
                    Ok(mut tx) => Self::final_response(&mut tx)
                        .await
                        .is_ok_and(|r| status_of(&r) != 408 && status_of(&r) != 503),
                    Err(_) => false,
                },
                Err(_) => false,
            };
            if last != Some(up) {
                info!(trunk = %t.name, up, "trunk status");
                self.emit(Event::TrunkStatus {
                    trunk: t.name.clone(),
                    up,
                });
                last = Some(up);
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    // ---------------------------------------------------------------- REGISTER

    pub(super) async fn register_loop(self: Arc<Self>, idx: usize) {
        let t = self.trunk(idx).clone();
        let call_id = format!("{}@jsg", self.random_token(20));
        let from_tag = self.random_token(10);
        let user = t
            .credentials
            .as_ref()
            .map(|c| c.username.clone())
            .unwrap_or_else(|| self.config.contact_user.clone());
        let domain = self.domain(idx);
        let aor = format!("<sip:{user}@{domain}>");
        let ruri = format!("sip:{}", hostport(&t));
        let mut cseq = 1u32;
        let mut backoff = Duration::from_secs(1);
        let expires = t.register_expires.as_secs().max(1);
        loop {
            let result = self
                .request_with_auth(idx, &mut cseq, |cseq, auth| {
                    let mut extra = vec![("Expires".to_string(), expires.to_string())];
                    extra.extend(auth.iter().cloned());
                    self.build(
                        &RequestParts {
                            trunk: idx,
                            method: "REGISTER",
                            ruri: &ruri,
                            from: format!("{aor};tag={from_tag}"),
                            to: aor.clone(),
                            call_id: &call_id,
                            cseq,
                            routes: &[],
                            extra,
                            body: None,
                        },
                        &self.random_token(16),
                    )
                })
                .await;
            cseq += 1;
            let wait = match result {
                Ok(resp) if status_of(&resp) / 100 == 2 => {
                    let granted = text::values(&resp.headers, "Contact")
                        .iter()
                        .flat_map(|v| text::split_list(v))
                        .find(|c| text::uri(c).contains(&self.contact_host))
                        .and_then(|c| text::param(&c, "expires"))
                        .or_else(|| text::value(&resp.headers, "Expires"))
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(expires);
                    let granted = Duration::from_secs(granted.max(2));
                    info!(trunk = %t.name, ?granted, "registered");
                    self.emit(Event::Registration {
                        trunk: t.name.clone(),
                        state: RegistrationState::Registered { expires: granted },
                    });
                    backoff = Duration::from_secs(1);
                    granted / 2
                }
                other => {
                    let reason = match other {
                        // rsipstack reports Timer F as a local 408: the
                        // registrar is unreachable (a network loss).
                        Ok(resp) if status_of(&resp) == 408 => {
                            Error::TimedOut("no answer from the registrar")
                        }
                        Ok(resp) => Error::PeerIncompatible(format!(
                            "registrar answered {} {}",
                            status_of(&resp),
                            resp.reason_phrase().unwrap_or("")
                        )),
                        Err(e) => e,
                    };
                    warn!(trunk = %t.name, %reason, ?backoff, "registration failed");
                    self.emit(Event::Registration {
                        trunk: t.name.clone(),
                        state: RegistrationState::Failed {
                            reason,
                            retry_in: backoff,
                        },
                    });
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                    w
                }
            };
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
