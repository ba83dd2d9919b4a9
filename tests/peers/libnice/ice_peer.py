#!/usr/bin/python3
"""libnice ICE peer for the ICE interop tests (tests/tests/ice_libnice.rs).

Behaves like Dino: RFC 5245 compatibility, trickle, two components (RTP and RTCP),
host candidates on 127.0.0.1 and ::1 only. Talks JSON lines:

stdout: {"creds": {"ufrag", "pwd"}}, {"candidate": "a=candidate:..."},
        {"gathering_done": true}, {"state": [component, state]},
        {"selected": {"component", "local", "remote"}}, {"received": n, "first": byte}
stdin:  {"creds": {"ufrag", "pwd"}}, {"candidate": "candidate:..."},
        {"send": n}  (send n datagrams of 0x80... on component 1), {"quit": true}

Through GI, nice_agent_attach_recv is not introspectable and send breaks on binary
data, so both are called through ctypes (see shared/TESTBED.md).
"""
import ctypes
import json
import sys

import gi

gi.require_version("Nice", "0.1")
from gi.repository import GLib, Nice  # noqa: E402

controlling = sys.argv[1] == "controlling"

libnice = ctypes.CDLL("libnice.so.10")
glib = ctypes.CDLL("libglib-2.0.so.0")
glib.g_main_context_default.restype = ctypes.c_void_p
RECV = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                        ctypes.POINTER(ctypes.c_char), ctypes.c_void_p)
libnice.nice_agent_attach_recv.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
                                           ctypes.c_void_p, RECV, ctypes.c_void_p]
libnice.nice_agent_attach_recv.restype = ctypes.c_bool
libnice.nice_agent_send.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint,
                                    ctypes.c_uint, ctypes.c_char_p]
libnice.nice_agent_send.restype = ctypes.c_int
ctypes.pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
ctypes.pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


loop = GLib.MainLoop()
agent = Nice.Agent.new_full(GLib.MainContext.default(), Nice.Compatibility.RFC5245,
                            Nice.AgentOption.ICE_TRICKLE)
agent.set_property("controlling-mode", controlling)
try:
    agent.set_property("upnp", False)
except TypeError:
    pass
for ip in ("127.0.0.1", "::1"):
    a = Nice.Address.new()
    a.set_from_string(ip)
    agent.add_local_address(a)
stream = agent.add_stream(2)
agent_ptr = ctypes.pythonapi.PyCapsule_GetPointer(agent.__gpointer__, None)
received = {"n": 0}


def on_recv(_agent, _stream, component, length, buf, _data):
    if component == 1:
        received["n"] += 1
        out({"received": received["n"], "first": buf[0][0] if length else None})


recv_cb = RECV(on_recv)
for comp in (1, 2):
    libnice.nice_agent_attach_recv(agent_ptr, stream, comp, glib.g_main_context_default(),
                                   recv_cb, None)


def on_candidate(_agent, cand):
    out({"candidate": agent.generate_local_candidate_sdp(cand)})


def on_gathering_done(_agent, _stream):
    out({"gathering_done": True})


def on_state(_agent, _stream, component, state):
    out({"state": [component, int(state)]})


def on_selected(_agent, _stream, component, local, remote):
    out({"selected": {"component": component,
                      "local": agent.generate_local_candidate_sdp(local),
                      "remote": agent.generate_local_candidate_sdp(remote)}})


agent.connect("new-candidate-full", on_candidate)
agent.connect("candidate-gathering-done", on_gathering_done)
agent.connect("component-state-changed", on_state)
agent.connect("new-selected-pair-full", on_selected)

ok, ufrag, pwd = agent.get_local_credentials(stream)
out({"creds": {"ufrag": ufrag, "pwd": pwd}})


def on_stdin(channel, _cond):
    line = channel.readline()
    if not line:
        loop.quit()
        return False
    msg = json.loads(line)
    if "creds" in msg:
        agent.set_remote_credentials(stream, msg["creds"]["ufrag"], msg["creds"]["pwd"])
    elif "candidate" in msg:
        line = msg["candidate"]
        if not line.startswith("a="):
            line = "a=" + line
        cand = agent.parse_remote_candidate_sdp(stream, line)
        if cand is not None:
            agent.set_remote_candidates(stream, cand.component_id, [cand])
    elif "send" in msg:
        payload = bytes([0x80]) + bytes(171)
        for _ in range(msg["send"]):
            libnice.nice_agent_send(agent_ptr, stream, 1, len(payload), payload)
    elif "quit" in msg:
        loop.quit()
        return False
    return True


GLib.io_add_watch(GLib.IOChannel.unix_new(sys.stdin.fileno()), GLib.IO_IN | GLib.IO_HUP, on_stdin)
agent.gather_candidates(stream)
loop.run()
