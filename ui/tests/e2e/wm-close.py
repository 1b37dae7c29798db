#!/usr/bin/env python3
"""Asks every top-level window named Testimony to close, as a window manager does when the
close button is clicked (a WM_DELETE_WINDOW client message). Xvfb has no window manager."""
import sys
from Xlib import X, display, protocol

d = display.Display()
root = d.screen().root
WM_PROTOCOLS = d.intern_atom('WM_PROTOCOLS')
WM_DELETE = d.intern_atom('WM_DELETE_WINDOW')
sent = 0

def walk(w):
    global sent
    try:
        name = w.get_wm_name()
        protos = w.get_wm_protocols() or []
    except Exception:
        return
    if name == 'Testimony' and WM_DELETE in protos:
        ev = protocol.event.ClientMessage(window=w, client_type=WM_PROTOCOLS, data=(32, [WM_DELETE, X.CurrentTime, 0, 0, 0]))
        w.send_event(ev)
        sent += 1
    for c in w.query_tree().children:
        walk(c)

walk(root)
d.flush()
print(sent)
sys.exit(0 if sent else 1)
