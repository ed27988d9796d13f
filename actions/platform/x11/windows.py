"""The window that has the keyboard focus on an X display: its WM_CLASS and title."""

from __future__ import annotations

from typing import Any

from actions.platform.base import WindowInfo


def focused_window(display: str) -> WindowInfo | None:
    """The X keyboard focus's window (its WM_CLASS and title); None if unknown.

    The focus is followed up to the window that carries WM_CLASS (toolkits focus inner windows).
    With no focus window (None or PointerRoot) the window under the pointer is used, since that is
    where keystrokes go then. Never raises: any X error means "unknown".
    """
    try:
        from Xlib import X
        from Xlib.display import Display

        conn = Display(display)
    except Exception:
        return None
    try:
        root = conn.screen().root
        window = conn.get_input_focus().focus
        if not hasattr(window, "id") or window.id == root.id:  # None (0) or PointerRoot (1), or the root
            window = _active_or_pointer_window(conn, root, X)
        found = _with_wm_class(window, root) if window is not None else None
        if found is None:
            return None
        win, (instance, klass) = found
        return WindowInfo(instance, klass, _title(conn, win), int(win.id))
    except Exception:
        return None
    finally:
        conn.close()


def _active_or_pointer_window(conn: Any, root: Any, x: Any) -> Any:
    active = root.get_full_property(conn.intern_atom("_NET_ACTIVE_WINDOW"), x.AnyPropertyType)
    if active is not None and len(active.value) and active.value[0]:
        return conn.create_resource_object("window", int(active.value[0]))
    child = root.query_pointer().child
    if not hasattr(child, "id") or child.id == 0:
        return None
    return _descend_to_client(child)


def _descend_to_client(window: Any, depth: int = 0) -> Any:
    """`window` if it has WM_CLASS, else its first descendant (a WM frame's client) that does."""
    if window.get_wm_class() or depth > 4:
        return window
    for child in reversed(window.query_tree().children):  # topmost first
        found = _descend_to_client(child, depth + 1)
        if found is not None and found.get_wm_class():
            return found
    return window


def _with_wm_class(window: Any, root: Any) -> tuple[Any, tuple[str, str]] | None:
    for _ in range(32):
        if window is None or window.id == root.id:
            return None
        wm_class = window.get_wm_class()
        if wm_class:
            return window, (str(wm_class[0]), str(wm_class[1]))
        parent = window.query_tree().parent
        window = parent if hasattr(parent, "id") and parent.id else None
    return None


def _title(conn: Any, window: Any) -> str | None:
    prop = window.get_full_property(conn.intern_atom("_NET_WM_NAME"), conn.intern_atom("UTF8_STRING"))
    value = prop.value if prop is not None else window.get_wm_name()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return (" ".join(str(value).split()) or None) if value else None
