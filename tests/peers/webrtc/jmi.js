'use strict';
// XEP-0353 Jingle Message Initiation for StanzaJS, which lacks it (its namespace
// constant for it is wrong). https://xmpp.org/extensions/xep-0353.html
//
// A message carries at most one JMI element, exposed as `msg.jmi`:
//   { action: 'propose'|'ringing'|'proceed'|'reject'|'retract'|'accept'|'finish',
//     id, media (propose only), reason: { condition, text } }

const { JXT, Namespaces } = require('stanza');

const NS_JMI = 'urn:xmpp:jingle-message:0';
const ACTIONS = ['propose', 'ringing', 'proceed', 'reject', 'retract', 'accept', 'finish'];

/** `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='…'/>` children of a propose. */
function descriptions() {
  return {
    importer(xml) {
      const media = [];
      for (const child of xml.children) {
        if (typeof child === 'string') continue;
        if (child.getName() === 'description' && child.getNamespace() === Namespaces.NS_JINGLE_RTP_1) {
          media.push(child.getAttribute('media'));
        }
      }
      return media.length ? media : undefined;
    },
    exporter(xml, value, context) {
      for (const media of value || []) {
        const desc = JXT.createElement(Namespaces.NS_JINGLE_RTP_1, 'description', context.namespace, xml);
        desc.setAttribute('media', media);
        xml.appendChild(desc);
      }
    },
  };
}

/** `<reason xmlns='urn:xmpp:jingle:1'><CONDITION/><text>…</text></reason>` */
function reason() {
  return {
    importer(xml) {
      for (const child of xml.children) {
        if (typeof child === 'string') continue;
        if (child.getName() !== 'reason' || child.getNamespace() !== Namespaces.NS_JINGLE_1) continue;
        const out = {};
        for (const c of child.children) {
          if (typeof c === 'string') continue;
          if (c.getName() === 'text') out.text = c.getText();
          else if (!out.condition) out.condition = c.getName();
        }
        return out;
      }
      return undefined;
    },
    exporter(xml, value, context) {
      if (!value || !value.condition) return;
      const r = JXT.createElement(Namespaces.NS_JINGLE_1, 'reason', context.namespace, xml);
      r.appendChild(JXT.createElement(Namespaces.NS_JINGLE_1, value.condition, Namespaces.NS_JINGLE_1, r));
      if (value.text) {
        const t = JXT.createElement(Namespaces.NS_JINGLE_1, 'text', Namespaces.NS_JINGLE_1, r);
        t.appendChild(value.text);
        r.appendChild(t);
      }
      xml.appendChild(r);
    },
  };
}

/** Registers the JMI elements on a StanzaJS client. */
function register(client) {
  client.stanzas.define(
    ACTIONS.map((action) => ({
      element: action,
      namespace: NS_JMI,
      path: 'message.jmi',
      type: action,
      typeField: 'action',
      fields: {
        id: JXT.attribute('id'),
        media: descriptions(),
        reason: reason(),
      },
    })),
  );
}

module.exports = { NS_JMI, ACTIONS, register };
