#!/usr/bin/env python3
"""Presses Ctrl+Shift+L through the X server (XTEST) while ANOTHER window, made here, has the
keyboard focus: only a system-wide key grab (the app's global shortcut) can see that key.
Prints whether the other window received the key press itself (it must not, if the grab is
there)."""
import sys
import time
from Xlib import X, XK, display
from Xlib.ext import xtest

d = display.Display()
if not d.has_extension('XTEST'):
    print('no XTEST extension', file=sys.stderr)
    sys.exit(2)
screen = d.screen()
w = screen.root.create_window(0, 0, 40, 40, 0, screen.root_depth,
                              event_mask=X.KeyPressMask | X.StructureNotifyMask | X.FocusChangeMask)
w.set_wm_name('other window')
w.map()
d.sync()
# Wait until it is mapped (focus can only go to a viewable window).
end = time.time() + 5
while time.time() < end:
    if d.pending_events():
        if d.next_event().type == X.MapNotify:
            break
    else:
        time.sleep(0.01)
w.set_input_focus(X.RevertToParent, X.CurrentTime)
d.sync()
focus = d.get_input_focus().focus
if focus != w:
    print('could not take the focus', file=sys.stderr)
    sys.exit(2)

codes = [d.keysym_to_keycode(XK.string_to_keysym(k)) for k in ('Control_L', 'Shift_L', 'l')]
for c in codes:
    xtest.fake_input(d, X.KeyPress, c)
    d.sync()
for c in reversed(codes):
    xtest.fake_input(d, X.KeyRelease, c)
    d.sync()
time.sleep(0.3)
got_l = False
l_code = codes[2]
while d.pending_events():
    e = d.next_event()
    if e.type == X.KeyPress and e.detail == l_code:
        got_l = True
print('other window got the key' if got_l else 'grabbed')
w.destroy()
d.sync()
